//! The rejoin relay: one conversation outlives the connections that carry it, so a reload, a
//! network blip or a phone call that fell rejoins the same call instead of starting over.
//!
//! The relay sits between the conversation's [`CallPeer`] and whichever transport [`Call`] is
//! attached: caller input flows in from it, interviewer output flows out to it. With nothing
//! attached the interviewer's audio goes nowhere and a grace period runs on the [`Clock`];
//! when it ends, the candidate counts as gone and the conversation is hung up. Why the relay
//! hung up is reported as a [`Departure`].
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use std::time::Duration;
//! # use viva_call::{Call, Departure, SystemClock, relay};
//! # async fn demo(transport_call: Call) {
//! let (conversation_call, peer) = Call::pair("interview-7", 8_000);
//! let (handle, departure, run) = relay(peer, Duration::from_secs(20), Arc::new(SystemClock::start()));
//! tokio::spawn(run);
//! // ... run the conversation on `conversation_call` ...
//! let released = handle.attach(1, transport_call, Departure::EndedByCandidate);
//! released.await.ok(); // the caller hung up (or the interview ended)
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::port::{Call, CallInput, CallOutput, CallPeer};

/// Identifies one transport connection (a signalling socket, a phone call).
pub type ConnectionId = u64;

/// Why the relay ended the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// The candidate ended the call (and did not come back within the grace period).
    EndedByCandidate,
    /// The candidate's connection dropped and did not come back within the grace period.
    ConnectionLost,
    /// The server asked to stop.
    Stopped,
}

enum Command {
    /// A connection carries the call; if it drops for good, that is the departure. The sender
    /// is dropped when the relay lets go of the connection.
    Attach(ConnectionId, Call, Departure, oneshot::Sender<()>),
    /// The connection went away (its socket closed).
    Detach(ConnectionId),
    /// The candidate ended the interview, for good.
    HangUp,
    /// The server is stopping.
    Stop,
}

/// Controls a running relay. Cheap to clone.
#[derive(Clone)]
pub struct RelayHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl RelayHandle {
    /// Carries the call over `call` (a transport's call for connection `conn`) from now on.
    /// If it drops and nothing is attached again within the grace period, the conversation
    /// ends with `if_gone`. The receiver resolves when the relay lets go of the connection:
    /// it dropped, another connection took over, or the conversation ended.
    pub fn attach(
        &self,
        conn: ConnectionId,
        call: Call,
        if_gone: Departure,
    ) -> oneshot::Receiver<()> {
        let (released, on_release) = oneshot::channel();
        let _ = self
            .commands
            .send(Command::Attach(conn, call, if_gone, released));
        on_release
    }

    /// Connection `conn` went away: the grace period for coming back starts.
    pub fn detach(&self, conn: ConnectionId) {
        let _ = self.commands.send(Command::Detach(conn));
    }

    /// The candidate ended the interview (no grace period).
    pub fn hang_up(&self) {
        let _ = self.commands.send(Command::HangUp);
    }

    /// The server is stopping: end the conversation now.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }
}

/// A relay for the conversation whose transport end is `conversation`: its handle, the
/// [`Departure`] it reports if it hangs up on the conversation (the sender is dropped without
/// a value when the conversation ends by itself), and the future to spawn that runs it. The
/// first connection must attach within `grace`.
pub fn relay(
    conversation: CallPeer,
    grace: Duration,
    clock: Arc<dyn Clock>,
) -> (
    RelayHandle,
    oneshot::Receiver<Departure>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (departure_tx, departure) = oneshot::channel();
    let relay = Relay {
        conversation,
        commands: command_rx,
        grace,
        attached: None,
        gone_at: Some((clock.now() + grace, Departure::ConnectionLost)),
        departure: Some(departure_tx),
        handles_alive: true,
        clock,
    };
    (RelayHandle { commands }, departure, relay.run())
}

/// The connection carrying the call.
struct Attached {
    conn: ConnectionId,
    call: Call,
    if_gone: Departure,
    /// Dropped when the relay lets go of the connection.
    _released: oneshot::Sender<()>,
}

struct Relay {
    conversation: CallPeer,
    commands: mpsc::UnboundedReceiver<Command>,
    grace: Duration,
    attached: Option<Attached>,
    /// While no connection is attached: when the candidate counts as gone, and why.
    gone_at: Option<(Duration, Departure)>,
    departure: Option<oneshot::Sender<Departure>>,
    /// False once every [`RelayHandle`] is dropped: a closed channel is always ready, so
    /// polling it again would spin.
    handles_alive: bool,
    clock: Arc<dyn Clock>,
}

impl Relay {
    async fn run(mut self) {
        loop {
            let gone = match self.gone_at {
                Some((at, _)) => self.clock.sleep_until(at),
                None => Box::pin(std::future::pending()),
            };
            let from_caller = async {
                match &mut self.attached {
                    Some(attached) => attached.call.inbound.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // Commands first: a connection attached before the conversation's next output
                // receives it.
                biased;
                command = self.commands.recv(), if self.handles_alive => match command {
                    Some(Command::Attach(conn, call, if_gone, released)) => {
                        self.attached = Some(Attached { conn, call, if_gone, _released: released });
                        self.gone_at = None;
                    }
                    Some(Command::Detach(conn)) => {
                        if self.attached.as_ref().is_some_and(|a| a.conn == conn) {
                            self.drop_connection();
                        }
                    }
                    Some(Command::HangUp) => self.end(Departure::EndedByCandidate).await,
                    Some(Command::Stop) => self.end(Departure::Stopped).await,
                    // Nobody can control the call any more: stop it.
                    None => {
                        self.handles_alive = false;
                        self.end(Departure::Stopped).await;
                    }
                },
                input = from_caller => match input {
                    // The connection dropped; the candidate may come back within the grace.
                    Some(CallInput::HangUp) | None => self.drop_connection(),
                    Some(input) => {
                        if self.conversation.inbound.send(input).await.is_err() {
                            return;
                        }
                    }
                },
                output = self.conversation.outbound.recv() => match output {
                    Some(CallOutput::HangUp) | None => {
                        if let Some(attached) = &self.attached {
                            let _ = attached.call.outbound.send(CallOutput::HangUp).await;
                        }
                        return;
                    }
                    Some(output) => {
                        if let Some(attached) = &self.attached {
                            let _ = attached.call.outbound.send(output).await;
                        }
                    }
                },
                () = gone => {
                    let why = self.gone_at.take().map_or(Departure::ConnectionLost, |(_, why)| why);
                    tracing::info!(?why, "the candidate did not come back: ending the call");
                    self.end(why).await;
                }
            }
        }
    }

    /// Ends the conversation for `why` (the first reason given stands).
    async fn end(&mut self, why: Departure) {
        self.gone_at = None;
        if let Some(departure) = self.departure.take() {
            let _ = departure.send(why);
        }
        let _ = self.conversation.inbound.send(CallInput::HangUp).await;
    }

    fn drop_connection(&mut self) {
        if let Some(attached) = self.attached.take() {
            tracing::info!(
                grace_secs = self.grace.as_secs(),
                "the candidate's connection dropped; waiting for a rejoin"
            );
            self.gone_at = Some((self.clock.now() + self.grace, attached.if_gone));
        }
    }
}

#[cfg(test)]
mod tests {
    use viva_media::PcmFrame;

    use super::*;
    use crate::clock::{ComputeTime, VirtualClock};

    const GRACE: Duration = Duration::from_secs(20);

    struct Setup {
        clock: Arc<VirtualClock>,
        conversation: Call,
        handle: RelayHandle,
        departure: oneshot::Receiver<Departure>,
    }

    fn setup() -> Setup {
        setup_on(Arc::new(VirtualClock::start(ComputeTime::Free).unwrap()))
    }

    /// A relay on an already started clock (a runtime's time can be paused once).
    fn setup_on(clock: Arc<VirtualClock>) -> Setup {
        let (conversation, peer) = Call::pair("interview", 8_000);
        let (handle, departure, run) = relay(peer, GRACE, clock.clone());
        tokio::spawn(run);
        Setup {
            clock,
            conversation,
            handle,
            departure,
        }
    }

    fn frame(ms: u64) -> PcmFrame {
        PcmFrame::new(vec![0.1; 160], 8_000, Duration::from_millis(ms)).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn audio_flows_both_ways_through_the_attached_connection() {
        let mut s = setup();
        let (transport, mut peer) = Call::pair("sip-1", 8_000);
        let _released = s.handle.attach(1, transport, Departure::EndedByCandidate);
        peer.inbound.send(CallInput::Audio(frame(0))).await.unwrap();
        assert_eq!(
            s.conversation.inbound.recv().await,
            Some(CallInput::Audio(frame(0)))
        );
        s.conversation
            .outbound
            .send(CallOutput::EndOfSpeech)
            .await
            .unwrap();
        assert_eq!(peer.outbound.recv().await, Some(CallOutput::EndOfSpeech));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_caller_who_calls_back_within_the_grace_continues_the_call() {
        let mut s = setup();
        let (first, first_peer) = Call::pair("call-1", 8_000);
        let released = s.handle.attach(1, first, Departure::EndedByCandidate);
        // The first call falls.
        first_peer.inbound.send(CallInput::HangUp).await.unwrap();
        released.await.unwrap_err();
        let dropped_at = s.clock.now();
        // 19 s later the candidate calls back: nothing ended.
        s.clock
            .sleep_until(dropped_at + GRACE - Duration::from_secs(1))
            .await;
        let (second, second_peer) = Call::pair("call-2", 8_000);
        let _released = s.handle.attach(2, second, Departure::EndedByCandidate);
        s.clock.sleep_until(dropped_at + GRACE * 3).await;
        second_peer
            .inbound
            .send(CallInput::Dtmf('5'))
            .await
            .unwrap();
        assert_eq!(
            s.conversation.inbound.recv().await,
            Some(CallInput::Dtmf('5')),
            "the call is still on, now carried by the second connection"
        );
        assert!(s.departure.try_recv().is_err(), "nobody departed");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_caller_who_does_not_come_back_departs_as_their_connection_said() {
        let clock = Arc::new(VirtualClock::start(ComputeTime::Free).unwrap());
        for (if_gone, dropped_by_socket) in [
            (Departure::EndedByCandidate, false),
            (Departure::ConnectionLost, true),
        ] {
            let mut s = setup_on(clock.clone());
            let (transport, peer) = Call::pair("t", 8_000);
            let _released = s.handle.attach(7, transport, if_gone);
            if dropped_by_socket {
                s.handle.detach(7);
            } else {
                drop(peer);
            }
            // The conversation hears the hang-up exactly when the grace ends.
            let start = s.clock.now();
            assert_eq!(s.conversation.inbound.recv().await, Some(CallInput::HangUp));
            let waited = s.clock.now() - start;
            // Tokio's timers round a sleep up to the next millisecond.
            assert!(
                waited >= GRACE && waited < GRACE + Duration::from_millis(10),
                "{waited:?}"
            );
            assert_eq!((&mut s.departure).await, Ok(if_gone));
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_end_button_and_a_stop_end_it_at_once() {
        let clock = Arc::new(VirtualClock::start(ComputeTime::Free).unwrap());
        for (act, expected) in [
            (
                RelayHandle::hang_up as fn(&RelayHandle),
                Departure::EndedByCandidate,
            ),
            (RelayHandle::stop, Departure::Stopped),
        ] {
            let mut s = setup_on(clock.clone());
            let (transport, _peer) = Call::pair("t", 48_000);
            let _released = s.handle.attach(1, transport, Departure::ConnectionLost);
            let start = s.clock.now();
            act(&s.handle);
            assert_eq!(s.conversation.inbound.recv().await, Some(CallInput::HangUp));
            assert_eq!(s.clock.now(), start, "no grace period");
            assert_eq!((&mut s.departure).await, Ok(expected));
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_connection_at_all_ends_after_the_grace_and_the_end_releases_everyone() {
        let clock = Arc::new(VirtualClock::start(ComputeTime::Free).unwrap());
        let mut s = setup_on(clock.clone());
        assert_eq!(s.conversation.inbound.recv().await, Some(CallInput::HangUp));
        assert!(s.clock.now() >= GRACE && s.clock.now() < GRACE + Duration::from_millis(10));
        assert_eq!((&mut s.departure).await, Ok(Departure::ConnectionLost));

        // The conversation hanging up by itself reaches the transport and releases it.
        let s = setup_on(clock);
        let (transport, mut peer) = Call::pair("t", 8_000);
        let released = s.handle.attach(1, transport, Departure::EndedByCandidate);
        s.conversation
            .outbound
            .send(CallOutput::HangUp)
            .await
            .unwrap();
        assert_eq!(peer.outbound.recv().await, Some(CallOutput::HangUp));
        released.await.unwrap_err();
        assert!(
            s.departure.await.is_err(),
            "the conversation ended by itself: no departure"
        );
    }
}
