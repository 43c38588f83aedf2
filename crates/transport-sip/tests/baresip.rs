//! baresip, a real softphone, dials in: it streams a WAV, presses a key (RFC 4733), and
//! hangs up. Driven through baresip's TCP control interface.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use viva_test_support::net::free_tcp_port;
use viva_test_support::scratch_dir;
use viva_test_support::sipp::Peer;

/// A running baresip, killed by its PID when dropped.
struct Baresip {
    peer: Peer,
    control: u16,
}

impl Baresip {
    /// Starts baresip and waits for its control port. Its ports are picked free just before
    /// it binds them, and another process can take one in between: once in a full test run on
    /// two cores the control port never opened. A baresip that exits is started again on
    /// fresh ports; one that never opens its port fails the test with its log.
    async fn start(dir: &Path, audio: &Path) -> Baresip {
        for _ in 0..3 {
            let mut baresip = Baresip::spawn(dir, audio);
            // Up to 20 s: on two cores under a full test run it can start slowly.
            for _ in 0..200 {
                if TcpStream::connect(("127.0.0.1", baresip.control))
                    .await
                    .is_ok()
                {
                    return baresip;
                }
                if baresip.peer.exited().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let status = baresip.peer.exited();
            let log = baresip.peer.output();
            if status.is_none() {
                panic!("baresip's control port did not open within 20 s; its log:\n{log}");
            }
            eprintln!(
                "baresip exited ({status:?}) before opening its control port; again on fresh ports. Its log:\n{log}"
            );
        }
        panic!("baresip exited before opening its control port three times");
    }

    fn spawn(dir: &Path, audio: &Path) -> Baresip {
        let sip_port = free_udp_port();
        let control = free_tcp_port();
        let rtp = free_media_port();
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip_port}\n\
             sip_transports udp\n\
             audio_player aubridge,nowhere\n\
             audio_alert aubridge,nowhere\n\
             audio_source aufile,{audio}\n\
             rtp_ports {rtp}-{rtp_end}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module aubridge.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{control}\n",
            audio = audio.display(),
            rtp_end = rtp + 3,
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(
            dir.join("accounts"),
            "<sip:candidate@127.0.0.1>;regint=0;audio_codecs=PCMU\n",
        )
        .unwrap();
        std::fs::write(dir.join("contacts"), "").unwrap();
        let mut command = Command::new("baresip");
        command.arg("-f").arg(dir).arg("-4");
        let peer = Peer::spawn(
            "baresip (apt install baresip)",
            command,
            dir.join("baresip.log"),
        );
        Baresip { peer, control }
    }

    /// Sends one command over ctrl_tcp (a netstring of JSON).
    async fn command(&self, command: &str, params: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.control))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "baresip's control port: {e}; its log:\n{}",
                    self.peer.output()
                )
            });
        let json = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
        let netstring = format!("{}:{json},", json.len());
        stream.write_all(netstring.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_dials_in_speaks_presses_a_key_and_hangs_up() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let scratch = scratch_dir("baresip");
    let dir = scratch.path();
    // Three seconds of a steady vowel-like tone, 16-bit PCM as aufile reads it.
    let audio = dir.join("speech.wav");
    let samples: Vec<i16> = (0..24_000)
        .map(|n| {
            let t = n as f32 / 8_000.0;
            let voice: f32 = (1..=5)
                .map(|h| (2.0 * std::f32::consts::PI * 150.0 * h as f32 * t).sin() / h as f32)
                .sum();
            (6_000.0 * voice) as i16
        })
        .collect();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&audio, spec).unwrap();
    for s in samples {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();

    let baresip = Baresip::start(dir, &audio).await;
    let target = format!("sip:4711@{}", endpoint.udp_addr().unwrap());
    baresip.command("dial", &target).await;
    let mut call = next_call(&mut incoming, Duration::from_secs(10)).await;
    assert_eq!(call.dialled, "4711");
    assert_eq!(call.caller, "candidate");

    let first = drain(&mut call.call, Duration::from_millis(1_500)).await;
    baresip.command("sndcode", "7").await;
    let second = drain(&mut call.call, Duration::from_millis(1_000)).await;
    baresip.command("hangup", "").await;
    let last = drain(&mut call.call, Duration::from_secs(5)).await;

    let log = std::fs::read_to_string(dir.join("baresip.log")).unwrap_or_default();
    assert!(first.loud_frames >= 40, "{first:?}\n{log}");
    assert_eq!(
        [first.keys.clone(), second.keys.clone(), last.keys.clone()].concat(),
        vec!['7'],
        "{log}"
    );
    assert!(last.hung_up, "{last:?}\n{log}");
    endpoint.shutdown().await;
    drop(baresip);
}
