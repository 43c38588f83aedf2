//! Building the server's peer connection: codecs, ICE settings, sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceServer, Registry, SettingEngineBuilder,
    register_default_interceptors,
};

use crate::{WebRtcError, WebRtcSettings};

/// Opus as browsers offer it: 48 kHz, two channels in SDP (RFC 7587), in-band FEC.
pub(crate) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn video_feedback() -> Vec<RTCPFeedback> {
    [
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
    ]
    .into_iter()
    .map(|(typ, parameter)| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    })
    .collect()
}

fn video_codec(mime_type: &str, sdp_fmtp_line: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime_type.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: sdp_fmtp_line.to_owned(),
        rtcp_feedback: video_feedback(),
    }
}

/// VP8, the camera codec the recording can keep.
pub(crate) fn vp8_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: video_codec("video/VP8", ""),
        payload_type: 96,
    }
}

/// The codecs a browser call may use. VP8 is listed first so it is preferred; H.264 (the
/// profiles browsers offer) is accepted so a browser without VP8 still connects. Each video
/// codec has its RTX (RFC 4588) companion, which carries NACK retransmissions.
fn media_engine() -> Result<(MediaEngine, Registry), webrtc::error::Error> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    let h264 = |packetization_mode: u8, profile_level_id: &str| {
        format!(
            "level-asymmetry-allowed=1;packetization-mode={packetization_mode};\
             profile-level-id={profile_level_id}"
        )
    };
    let video = [
        (96, 97, vp8_codec().rtp_codec),
        (102, 103, video_codec("video/H264", &h264(1, "42001f"))),
        (125, 105, video_codec("video/H264", &h264(1, "42e01f"))),
        (127, 104, video_codec("video/H264", &h264(0, "42001f"))),
        (108, 109, video_codec("video/H264", &h264(0, "42e01f"))),
        (123, 124, video_codec("video/H264", &h264(1, "640032"))),
    ];
    for (payload_type, rtx_payload_type, rtp_codec) in video {
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec,
                payload_type,
            },
            RtpCodecKind::Video,
        )?;
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: "video/rtx".to_owned(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line: format!("apt={payload_type}"),
                    rtcp_feedback: vec![],
                },
                payload_type: rtx_payload_type,
            },
            RtpCodecKind::Video,
        )?;
    }
    // NACK (retransmission requests for the camera), receiver reports, transport-wide
    // congestion feedback: what browsers expect of a peer.
    let registry = register_default_interceptors(Registry::new(), &mut engine)?;
    Ok((engine, registry))
}

fn ice_servers(settings: &WebRtcSettings) -> Result<Vec<RTCIceServer>, WebRtcError> {
    settings
        .ice_servers
        .iter()
        .map(|server| {
            let server = RTCIceServer {
                urls: server.urls.clone(),
                username: server.username.clone().unwrap_or_default(),
                credential: server.credential.clone().unwrap_or_default(),
            };
            server
                .urls()
                .map_err(|err| WebRtcError::Settings {
                    detail: format!(
                        "ICE server {:?}: {err}; use stun:HOST:PORT or turn:HOST:PORT URLs, \
                         with a username and credential for TURN",
                        server.urls
                    ),
                })
                .map(|_| server)
        })
        .collect()
}

/// Which ports to try, in order: the whole configured range, starting at a different port for
/// each call so consecutive calls do not race for the same one.
fn candidate_ports(settings: &WebRtcSettings) -> Result<Vec<u16>, WebRtcError> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let Some((first, last)) = settings.udp_ports else {
        return Ok(vec![0]);
    };
    if first == 0 || first > last {
        return Err(WebRtcError::Settings {
            detail: format!(
                "udp_ports {first}-{last} is not a range of ports; give the first and last \
                 port, e.g. [40000, 40999]"
            ),
        });
    }
    let count = usize::from(last - first) + 1;
    let start = NEXT.fetch_add(1, Ordering::Relaxed) % count;
    Ok((0..count)
        .map(|i| first + ((start + i) % count) as u16)
        .collect())
}

/// Builds the peer connection. Media uses one UDP socket per local interface, on a free port
/// of the configured range (any port if none is configured).
pub(crate) async fn build(
    settings: &WebRtcSettings,
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<Arc<dyn PeerConnection>, WebRtcError> {
    let peer_error = |err: webrtc::error::Error| WebRtcError::PeerConnection {
        detail: err.to_string(),
    };
    let ice_servers = ice_servers(settings)?;
    let ports = candidate_ports(settings)?;
    // The address family follows the public address; IPv4 otherwise.
    let wildcard = match settings.public_ip {
        Some(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    // A wildcard bind fails while any interface's socket holds the port, so this finds a port
    // that is free on every interface (the peer connection binds each interface separately).
    let port = ports
        .iter()
        .copied()
        .find(|&port| port == 0 || UdpSocket::bind((wildcard, port)).is_ok())
        .ok_or(match settings.udp_ports {
            Some((first, last)) => WebRtcError::NoFreePort { first, last },
            None => WebRtcError::Settings {
                detail: "no UDP port could be bound".to_owned(),
            },
        })?;

    // A server is never on the candidate's LAN, so resolving `.local` candidates cannot help;
    // browsers connect to the server's candidates and ICE learns theirs. (The public address
    // of a 1:1 NAT is applied to the answer, see `announce_public_ip`: webrtc 0.21 stores the
    // setting engine's NAT mapping but never uses it.)
    let setting_engine =
        SettingEngineBuilder::new().with_multicast_dns_mode(MulticastDnsMode::Disabled);
    let (media_engine, registry) = media_engine().map_err(peer_error)?;
    let configuration = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers)
        .build();
    let peer = PeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(setting_engine.build())
        .with_handler(handler)
        .with_udp_addrs(vec![SocketAddr::new(wildcard, port)])
        .build()
        .await
        .map_err(peer_error)?;
    Ok(Arc::new(peer))
}

/// Rewrites the server's host candidates in `answer_sdp` to `public_ip` (1:1 NAT): the browser
/// then sends its checks to the public address, which the NAT forwards to the private one the
/// socket is bound to. Candidates of the other address family are left alone.
pub(crate) fn announce_public_ip(answer_sdp: &str, public_ip: IpAddr) -> String {
    let mut rewritten = String::with_capacity(answer_sdp.len());
    for line in answer_sdp.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        let ending = &line[content.len()..];
        let fields: Vec<&str> = content.split(' ').collect();
        let is_host_candidate = content.starts_with("a=candidate:")
            && fields.len() >= 8
            && fields[6] == "typ"
            && fields[7] == "host";
        let same_family = fields
            .get(4)
            .and_then(|address| address.parse::<IpAddr>().ok())
            .is_some_and(|address| address.is_ipv4() == public_ip.is_ipv4());
        if is_host_candidate && same_family {
            let public = public_ip.to_string();
            let mut fields = fields;
            fields[4] = &public;
            rewritten.push_str(&fields.join(" "));
            rewritten.push_str(ending);
        } else {
            rewritten.push_str(line);
        }
    }
    rewritten
}

/// One `m=` section of an SDP description, as far as the call cares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MediaSection {
    kind: String,
    /// Port 0 means the section was rejected.
    port: u16,
    formats: Vec<String>,
    /// `a=rtpmap` lines: payload type and encoding name.
    rtpmaps: Vec<(String, String)>,
    direction: Option<String>,
}

fn media_sections(sdp: &str) -> Vec<MediaSection> {
    let mut sections: Vec<MediaSection> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(media) = line.strip_prefix("m=") {
            let mut fields = media.split_whitespace();
            let kind = fields.next().unwrap_or_default().to_owned();
            let port = fields
                .next()
                .and_then(|port| port.split('/').next())
                .and_then(|port| port.parse().ok())
                .unwrap_or(0);
            let formats = fields.skip(1).map(str::to_owned).collect();
            sections.push(MediaSection {
                kind,
                port,
                formats,
                rtpmaps: Vec::new(),
                direction: None,
            });
        } else if let Some(section) = sections.last_mut() {
            if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
                let mut fields = rtpmap.split_whitespace();
                if let (Some(payload_type), Some(encoding)) = (fields.next(), fields.next()) {
                    let name = encoding.split('/').next().unwrap_or_default();
                    section
                        .rtpmaps
                        .push((payload_type.to_owned(), name.to_owned()));
                }
            } else if let Some(direction) = line.strip_prefix("a=").filter(|attribute| {
                matches!(
                    *attribute,
                    "sendrecv" | "sendonly" | "recvonly" | "inactive"
                )
            }) {
                section.direction = Some(direction.to_owned());
            }
        }
    }
    sections
}

/// True if the offer has an audio section that is not rejected.
pub(crate) fn offers_audio(offer_sdp: &str) -> bool {
    media_sections(offer_sdp)
        .iter()
        .any(|section| section.kind == "audio" && section.port != 0)
}

/// The camera codec our answer settled on (the first format of the receiving video section),
/// e.g. `VP8` or `H264`; `None` when no camera video is received.
pub(crate) fn answered_camera_codec(answer_sdp: &str) -> Option<String> {
    let section = media_sections(answer_sdp).into_iter().find(|section| {
        section.kind == "video"
            && section.port != 0
            && !matches!(section.direction.as_deref(), Some("inactive" | "sendonly"))
    })?;
    let first = section.formats.first()?;
    section
        .rtpmaps
        .iter()
        .find(|(payload_type, _)| payload_type == first)
        .map(|(_, name)| name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\n\
        o=- 1 2 IN IP4 0.0.0.0\r\n\
        s=-\r\n\
        t=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=sendrecv\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\n\
        a=rtpmap:96 VP8/90000\r\n\
        a=rtpmap:97 rtx/90000\r\n\
        a=rtpmap:102 H264/90000\r\n\
        a=recvonly\r\n";

    #[test]
    fn the_answered_camera_codec_is_the_first_video_format() {
        assert_eq!(answered_camera_codec(ANSWER).as_deref(), Some("VP8"));
        let h264_first = ANSWER.replace("96 97 102", "102 96 97");
        assert_eq!(answered_camera_codec(&h264_first).as_deref(), Some("H264"));
        let rejected = ANSWER.replace("m=video 9", "m=video 0");
        assert_eq!(answered_camera_codec(&rejected), None);
        let inactive = ANSWER.replace("a=recvonly", "a=inactive");
        assert_eq!(answered_camera_codec(&inactive), None);
        let audio_only = ANSWER.split("m=video").next().unwrap();
        assert_eq!(answered_camera_codec(audio_only), None);
    }

    #[test]
    fn host_candidates_announce_the_public_address() {
        let sdp = "v=0\r\n\
            a=candidate:1 1 udp 2130706431 10.0.0.5 40000 typ host\r\n\
            a=candidate:2 1 udp 2130706431 fd00::2 40001 typ host\r\n\
            a=candidate:3 1 udp 1694498815 198.51.100.1 40002 typ srflx raddr 10.0.0.5 rport 40000\r\n\
            a=end-of-candidates\r\n";
        let rewritten = announce_public_ip(sdp, "203.0.113.7".parse().unwrap());
        assert_eq!(
            rewritten,
            sdp.replace("10.0.0.5 40000 typ host", "203.0.113.7 40000 typ host")
        );
        let rewritten = announce_public_ip(sdp, "2001:db8::7".parse().unwrap());
        assert_eq!(rewritten, sdp.replace("fd00::2", "2001:db8::7"));
    }

    #[test]
    fn an_offer_needs_a_live_audio_section() {
        assert!(offers_audio(ANSWER));
        assert!(!offers_audio(&ANSWER.replace("m=audio 9", "m=audio 0")));
        assert!(!offers_audio("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"));
        assert!(!offers_audio(""));
    }

    #[test]
    fn port_ranges_are_checked_and_rotated() {
        let settings = |udp_ports| WebRtcSettings {
            udp_ports,
            ..WebRtcSettings::default()
        };
        assert_eq!(candidate_ports(&settings(None)).unwrap(), vec![0]);
        let ports = candidate_ports(&settings(Some((40_000, 40_003)))).unwrap();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![40_000, 40_001, 40_002, 40_003]);
        let next = candidate_ports(&settings(Some((40_000, 40_003)))).unwrap();
        assert_ne!(ports[0], next[0], "the next call starts at another port");
        assert!(matches!(
            candidate_ports(&settings(Some((50_000, 40_000)))),
            Err(WebRtcError::Settings { .. })
        ));
        assert!(matches!(
            candidate_ports(&settings(Some((0, 10)))),
            Err(WebRtcError::Settings { .. })
        ));
    }

    #[test]
    fn ice_servers_are_validated() {
        let settings = |urls: &[&str], username: Option<&str>| WebRtcSettings {
            ice_servers: vec![crate::IceServer {
                urls: urls.iter().map(|url| url.to_string()).collect(),
                username: username.map(str::to_owned),
                credential: username.map(str::to_owned),
            }],
            ..WebRtcSettings::default()
        };
        assert!(ice_servers(&settings(&["stun:stun.example.org:3478"], None)).is_ok());
        assert!(ice_servers(&settings(&["turn:turn.example.org:3478"], Some("viva"))).is_ok());
        let err = ice_servers(&settings(&["turn:turn.example.org:3478"], None)).unwrap_err();
        assert!(err.to_string().contains("turn.example.org"), "{err}");
        assert!(ice_servers(&settings(&["http://example.org"], None)).is_err());
    }
}
