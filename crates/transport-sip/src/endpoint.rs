//! The SIP endpoint: listeners, the request dispatcher, trunk registrations, and the shared
//! state calls are set up with.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::EndpointBuilder;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::registration::{RefreshOutcome, Registration};
use rsipstack::platform::CancellationToken;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Param, Request, Scheme, StatusCode, Transport, Uri};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::udp::{UdpConnection, UdpInner};
use rsipstack::transport::{SipAddr, SipConnection, TcpListenerConnection, TransportLayer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::IncomingCall;
use crate::admission::Gatekeeper;
use crate::dialog::{ActiveCalls, CallEnvironment};
use crate::error::SipError;
use crate::flood::FloodGuard;
use crate::inbound;
use crate::ports::RtpPorts;
use crate::settings::{SipSettings, SipTransport, Trunk, TrunkPlan, validate};

/// User part of this endpoint's Contact and From URIs.
pub(crate) const LOCAL_USER: &str = "viva";
/// User-Agent and Server header value.
const USER_AGENT: &str = concat!("Viva/", env!("CARGO_PKG_VERSION"));
/// Calls the server may leave unanswered in the channel before new callers are turned away.
const INCOMING_QUEUE: usize = 16;
/// How long shutdown waits for calls to send their BYEs.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Methods this endpoint handles, for `Allow` headers.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";

/// Whether the server has room for another call; `Err`: when to try again.
pub(crate) type Room = Box<dyn Fn() -> Result<(), Duration> + Send + Sync>;

/// Everything the endpoint's tasks share.
pub(crate) struct Shared {
    pub(crate) stack: EndpointInnerRef,
    pub(crate) dialogs: Arc<DialogLayer>,
    pub(crate) gate: Gatekeeper,
    pub(crate) room: Room,
    /// Per-source rates of INVITEs and REGISTERs.
    flood: FloodGuard,
    pub(crate) trunks: Vec<Trunk>,
    pub(crate) udp_addr: Option<SocketAddr>,
    pub(crate) tcp_addr: Option<SocketAddr>,
    pub(crate) public_ip: Option<IpAddr>,
    pub(crate) rtp_ports: RtpPorts,
    pub(crate) ring_timeout: Duration,
    pub(crate) calls: CallEnvironment,
    /// Set when the server drains before it stops: OPTIONS probes get 503, so a proxy that
    /// probes (Kamailio's dispatcher) sends new calls elsewhere.
    pub(crate) draining: AtomicBool,
    /// Where answered inbound calls go; taken at shutdown so the server's stream ends.
    incoming: Mutex<Option<mpsc::Sender<IncomingCall>>>,
    stack_token: CancellationToken,
    registrations: CancellationToken,
    /// The registration tasks, awaited at shutdown so their unregistering REGISTERs go out.
    registration_tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// Creates the listeners and the SIP stack, and starts serving.
    pub(crate) async fn start(
        settings: SipSettings,
        room: Room,
    ) -> Result<(Arc<Shared>, mpsc::Receiver<IncomingCall>), SipError> {
        let plans = validate(&settings)?;
        let stack_token = CancellationToken::new();
        let transport_layer = TransportLayer::new(stack_token.child_token());

        let udp_addr = match settings.udp {
            Some(addr) => {
                let (connection, bound) =
                    udp_listener(addr, settings.public_ip, stack_token.child_token()).await?;
                transport_layer.add_transport(connection.into());
                Some(bound)
            }
            None => None,
        };
        let tcp_addr = match settings.tcp {
            Some(addr) => {
                let bound = probe_tcp(addr)?;
                let external = settings
                    .public_ip
                    .map(|ip| SocketAddr::new(ip, bound.port()));
                let listener = TcpListenerConnection::new(bound, external)
                    .await
                    .map_err(|e| SipError::Stack(e.to_string()))?;
                transport_layer.add_transport(listener.into());
                Some(bound)
            }
            None => None,
        };

        let endpoint = EndpointBuilder::new()
            .with_user_agent(USER_AGENT)
            .with_cancel_token(stack_token.clone())
            .with_transport_layer(transport_layer)
            .build();
        let requests = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let stack = endpoint.inner.clone();
        tokio::spawn(async move { endpoint.serve().await });

        let dialogs = Arc::new(DialogLayer::new(stack.clone()));
        let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_QUEUE);
        let trunks: Vec<Trunk> = plans
            .iter()
            .map(|plan: &TrunkPlan| plan.trunk.clone())
            .collect();
        let shared = Arc::new(Shared {
            stack,
            dialogs: dialogs.clone(),
            gate: Gatekeeper::new(plans),
            room,
            flood: FloodGuard::new(settings.source_rate),
            trunks,
            udp_addr,
            tcp_addr,
            public_ip: settings.public_ip,
            rtp_ports: RtpPorts::new(settings.rtp_ports.0, settings.rtp_ports.1),
            ring_timeout: settings.ring_timeout,
            draining: AtomicBool::new(false),
            calls: CallEnvironment {
                dialogs,
                max_call: settings.max_call,
                shutdown: CancellationToken::new(),
                active: ActiveCalls::default(),
            },
            incoming: Mutex::new(Some(incoming_tx)),
            stack_token,
            registrations: CancellationToken::new(),
            registration_tasks: Mutex::new(Vec::new()),
        });
        tokio::spawn(dispatch(shared.clone(), requests));
        let tasks: Vec<JoinHandle<()>> = shared
            .trunks
            .iter()
            .filter(|t| t.register)
            .map(|trunk| tokio::spawn(keep_registered(shared.clone(), trunk.clone())))
            .collect();
        if let Ok(mut registration_tasks) = shared.registration_tasks.lock() {
            *registration_tasks = tasks;
        }
        info!(udp = ?udp_addr, tcp = ?tcp_addr, trunks = shared.trunks.len(), "SIP endpoint listening");
        Ok((shared, incoming_rx))
    }

    /// Hangs up every call, unregisters, and stops the stack.
    pub(crate) async fn shutdown(&self) {
        self.calls.shutdown.cancel();
        self.registrations.cancel();
        if let Ok(mut incoming) = self.incoming.lock() {
            incoming.take();
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.calls.active.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tasks = self
            .registration_tasks
            .lock()
            .map(|mut tasks| std::mem::take(&mut *tasks))
            .unwrap_or_default();
        for task in tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                debug!("a trunk registration did not finish before shutdown");
            }
        }
        self.stack_token.cancel();
        info!("SIP endpoint stopped");
    }

    /// The channel to hand answered calls to, unless the endpoint is shutting down.
    pub(crate) fn incoming(&self) -> Option<mpsc::Sender<IncomingCall>> {
        self.incoming.lock().ok()?.clone()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.calls.shutdown.is_cancelled()
    }

    /// The IP media and SIP are bound to (unspecified: all interfaces).
    pub(crate) fn bind_ip(&self) -> IpAddr {
        self.udp_addr
            .or(self.tcp_addr)
            .map(|addr| addr.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// The IP to announce to `peer` in SDP and Contact: the public IP if configured, else the
    /// local address the operating system routes towards the peer.
    pub(crate) fn announced_ip(&self, peer: IpAddr) -> IpAddr {
        if let Some(public) = self.public_ip {
            return public;
        }
        let bound = self.bind_ip();
        if !bound.is_unspecified() {
            return bound;
        }
        route_source(peer).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// This endpoint's Contact URI for a dialog with `peer` over `transport`.
    pub(crate) fn contact(&self, transport: Transport, peer: IpAddr) -> Uri {
        let (port, params) = match transport {
            Transport::Tcp => (
                self.tcp_addr.map(|a| a.port()),
                vec![Param::Transport(Transport::Tcp)],
            ),
            _ => (self.udp_addr.map(|a| a.port()), Vec::new()),
        };
        let port = port.or(self.udp_addr.or(self.tcp_addr).map(|a| a.port()));
        let host = self.announced_ip(peer);
        Uri {
            scheme: Some(Scheme::Sip),
            auth: Some(rsipstack::sip::Auth {
                user: LOCAL_USER.into(),
                password: None,
            }),
            host_with_port: match port {
                Some(port) => SocketAddr::new(host, port).into(),
                None => host.into(),
            },
            params,
            headers: Vec::new(),
        }
    }
}

/// Binds the UDP listener ourselves so that port 0 and the public address both work.
async fn udp_listener(
    addr: SocketAddr,
    public_ip: Option<IpAddr>,
    token: CancellationToken,
) -> Result<(UdpConnection, SocketAddr), SipError> {
    let bind_error = |e: std::io::Error| SipError::Bind {
        transport: "UDP",
        addr,
        reason: e.to_string(),
    };
    let socket = std::net::UdpSocket::bind(addr).map_err(bind_error)?;
    socket.set_nonblocking(true).map_err(bind_error)?;
    let bound = socket.local_addr().map_err(bind_error)?;
    let socket = tokio::net::UdpSocket::from_std(socket).map_err(bind_error)?;
    let inner = UdpInner {
        conn: Arc::new(socket),
        addr: SipAddr {
            r#type: Some(Transport::Udp),
            // A wildcard address is replaced by the first interface address for Via headers.
            addr: SipConnection::resolve_bind_address(bound).into(),
        },
    };
    let external = public_ip.map(|ip| SocketAddr::new(ip, bound.port()));
    Ok((
        UdpConnection::attach(inner, external, Some(token)).await,
        bound,
    ))
}

/// Checks that the TCP address can be bound and resolves port 0 to a free port: the stack
/// binds the listener itself later, and only logs failures there.
fn probe_tcp(addr: SocketAddr) -> Result<SocketAddr, SipError> {
    std::net::TcpListener::bind(addr)
        .and_then(|listener| listener.local_addr())
        .map_err(|e| SipError::Bind {
            transport: "TCP",
            addr,
            reason: e.to_string(),
        })
}

/// The local address the operating system would send from towards `peer`.
fn route_source(peer: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = match peer {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    // Connecting a UDP socket sends nothing; it only selects the route.
    socket.connect((peer, 9)).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// Whether a request belongs to a dialog (its To header carries a tag), rather than starting
/// one.
pub fn is_in_dialog(request: &Request) -> bool {
    request
        .to_header()
        .ok()
        .and_then(|to| to.tag().ok().flatten())
        .is_some()
}

/// Hands every new request to its handler.
async fn dispatch(shared: Arc<Shared>, mut requests: TransactionReceiver) {
    // Requests refused for their source's rate so far: logged at the 1st, 10th, 100th...
    let mut flooded: u64 = 0;
    loop {
        let mut tx = tokio::select! {
            request = requests.recv() => match request {
                Some(tx) => tx,
                None => break,
            },
            _ = shared.stack_token.cancelled() => break,
        };
        let in_dialog = is_in_dialog(&tx.original);
        debug!(method = %tx.original.method, in_dialog, "SIP request");
        if in_dialog {
            match shared.dialogs.match_dialog(&tx) {
                Some(mut dialog) => {
                    tokio::spawn(async move {
                        if let Err(e) = dialog.handle(&mut tx).await {
                            debug!(error = %e, "in-dialog request failed");
                        }
                    });
                }
                None if tx.original.method == Method::Ack => {}
                None => reply(&mut tx, StatusCode::CallTransactionDoesNotExist).await,
            }
            continue;
        }
        if matches!(tx.original.method, Method::Invite | Method::Register)
            && let Some(source) = inbound::source_of(&tx)
            && let Err(wait) = shared.flood.admit(source.ip())
        {
            flooded += 1;
            if flooded.is_power_of_two() || flooded.is_multiple_of(1000) {
                warn!(%source, method = %tx.original.method, refused = flooded, "too many SIP requests from one address: answering 503");
            }
            let retry = Header::RetryAfter(wait.as_secs().max(1).to_string().into());
            if let Err(e) = tx
                .reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
                .await
            {
                debug!(error = %e, "503 reply failed");
            }
            continue;
        }
        match tx.original.method {
            Method::Invite => {
                if shared.is_shutting_down() {
                    reply(&mut tx, StatusCode::ServiceUnavailable).await;
                } else {
                    tokio::spawn(inbound::answer(shared.clone(), tx));
                }
            }
            Method::Options => {
                let headers = vec![
                    Header::Allow(ALLOW.into()),
                    Header::Accept("application/sdp".into()),
                ];
                let status = match shared.draining.load(Ordering::Relaxed) {
                    true => StatusCode::ServiceUnavailable,
                    false => StatusCode::OK,
                };
                if let Err(e) = tx.reply_with(status, headers, None).await {
                    debug!(error = %e, "OPTIONS reply failed");
                }
            }
            // A stray ACK (for a response already gone) needs no answer.
            Method::Ack => {}
            Method::Bye | Method::Cancel | Method::Info | Method::Update | Method::PRack => {
                reply(&mut tx, StatusCode::CallTransactionDoesNotExist).await;
            }
            _ => {
                let headers = vec![Header::Allow(ALLOW.into())];
                if let Err(e) = tx
                    .reply_with(StatusCode::MethodNotAllowed, headers, None)
                    .await
                {
                    debug!(error = %e, "405 reply failed");
                }
            }
        }
    }
}

async fn reply(tx: &mut Transaction, status: StatusCode) {
    if let Err(e) = tx.reply(status).await {
        debug!(error = %e, "reply failed");
    }
}

/// Keeps a trunk registration alive until shutdown, then removes it.
async fn keep_registered(shared: Arc<Shared>, trunk: Trunk) {
    let Some((user, password)) = trunk.credentials() else {
        return;
    };
    let credential = Credential {
        username: user.to_string(),
        password: password.to_string(),
        realm: None,
        auth_username: None,
    };
    let Ok(registrar) = trunk_uri(&trunk, None) else {
        warn!(trunk = %trunk.name, address = %trunk.address, "trunk address is not a valid SIP host; not registering");
        return;
    };
    let mut registration = Registration::new(shared.stack.clone(), Some(credential));
    let name = trunk.name.clone();
    registration
        .keep_alive(
            registrar.clone(),
            trunk.register_expires_secs,
            shared.registrations.clone(),
            |outcome| match outcome {
                RefreshOutcome::Registered(response) => {
                    info!(trunk = %name, status = %response.status_code, "registered with trunk")
                }
                RefreshOutcome::Rejected(response) => {
                    warn!(trunk = %name, status = %response.status_code, "trunk refused registration")
                }
                RefreshOutcome::Failed(error) => {
                    warn!(trunk = %name, %error, "trunk registration failed")
                }
            },
        )
        .await;
    // Shutdown: withdraw the binding so the trunk stops sending calls here.
    match tokio::time::timeout(
        Duration::from_secs(2),
        registration.register(registrar, Some(0)),
    )
    .await
    {
        Ok(Ok(_)) => info!(trunk = %trunk.name, "unregistered from trunk"),
        _ => debug!(trunk = %trunk.name, "unregister did not complete"),
    }
}

/// `sip:[user@]address[;transport=tcp]` for a trunk.
pub(crate) fn trunk_uri(trunk: &Trunk, user: Option<&str>) -> Result<Uri, rsipstack::sip::Error> {
    let mut uri = Uri::try_from(format!("sip:{}", trunk.address.trim()).as_str())?;
    uri.auth = user.map(|user| rsipstack::sip::Auth {
        user: user.to_string(),
        password: None,
    });
    if trunk.transport == SipTransport::Tcp {
        uri.params.push(Param::Transport(Transport::Tcp));
    }
    Ok(uri)
}
