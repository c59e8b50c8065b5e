//! The hand-written CheckRequest encoder against Envoy's own protos: what the filter sends must
//! decode with `envoy-types` into exactly what native ext_authz would have filled in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::Rng;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer};
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use ext_authz_filter::check_request::{
    encode, MetadataContext, RequestAttributes, RequestBody, SocketAddress,
};
use ext_authz_filter::config::Config;
use prost::Message;

const CONFIG: &str = r#"{
    "grpc_service": {"envoy_grpc": {"cluster_name": "outbound|9000||ext-authz.ns.svc.cluster.local"}},
    "context_extensions": {"virtual_host": "backend", "route": "caf\u00e9", "empty": ""}
}"#;

fn decode(bytes: &[u8]) -> CheckRequest {
    CheckRequest::decode(bytes).expect("the encoded CheckRequest decodes with envoy-types")
}

fn http(request: &CheckRequest) -> &HttpRequest {
    request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .expect("attributes.request.http")
}

/// `(address, port)` of a peer, which must be a socket address with a port value.
fn socket(peer: &Option<Peer>) -> (String, u32) {
    let peer = peer.as_ref().expect("peer");
    assert_eq!(peer.service, "");
    assert!(peer.labels.is_empty());
    assert_eq!(peer.principal, "");
    match peer.address.as_ref().and_then(|a| a.address.as_ref()) {
        Some(AddressKind::SocketAddress(socket)) => {
            assert_eq!(socket.protocol, 0, "TCP");
            let port = match socket.port_specifier {
                Some(PortSpecifier::PortValue(port)) => port,
                ref other => panic!("port: {other:?}"),
            };
            (socket.address.clone(), port)
        }
        other => panic!("not a socket address: {other:?}"),
    }
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn realistic_request_decodes_field_by_field() {
    let config = Config::parse(CONFIG.as_bytes()).unwrap();
    let big = "b".repeat(20 * 1024);
    let headers: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"POST"),
        (b":path", b"/api/v1/items?id=7&x=%20"),
        (b":authority", b"api.example.com:8443"),
        (b":scheme", b"https"),
        (b"x-request-id", b"4b1e8c3e-7d0a-4c59-9a1f-1f2d3c4b5a69"),
        (b"content-type", b"application/json"),
        (b"content-length", b"42"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"cookie", b"a=1"),
        (b"x-empty", b""),
        (b"x-forwarded-for", b"10.0.0.2"),
        (b"X-Upper-Case", b"Shouting"),
        (b"x-big", big.as_bytes()),
        (b"x-unicode", "caf\u{e9} \u{2603} \u{1f600}".as_bytes()),
        (b"cookie", b"b=2"),
        (b"x-forwarded-for", b""),
        (b"x-forwarded-for", b"10.0.0.3"),
    ];
    let attributes = RequestAttributes {
        headers: &headers,
        source: Some(SocketAddress::parse(b"192.168.1.20:54321")),
        destination: Some(SocketAddress::parse(b"[2001:db8::1]:8443")),
        protocol: b"HTTP/2",
        time: Duration::new(1_732_270_000, 123_456_789),
        body: None,
        metadata: Default::default(),
        route_metadata: Default::default(),
        selection: None,
        tls: None,
    };
    let request = decode(&encode(&attributes, &config.context_extensions.encoded));
    let attrs = request.attributes.as_ref().unwrap();

    assert_eq!(socket(&attrs.source), ("192.168.1.20".to_owned(), 54321));
    assert_eq!(socket(&attrs.destination), ("2001:db8::1".to_owned(), 8443));
    assert_eq!(
        attrs.context_extensions,
        map(&[
            ("virtual_host", "backend"),
            ("route", "café"),
            ("empty", "")
        ])
    );
    // Present and empty, as native sends them.
    assert_eq!(attrs.metadata_context, Some(Default::default()));
    assert_eq!(attrs.route_metadata_context, Some(Default::default()));
    assert_eq!(attrs.tls_session, None);

    let time = attrs.request.as_ref().unwrap().time.expect("request.time");
    assert_eq!((time.seconds, time.nanos), (1_732_270_000, 123_456_789));

    let http = http(&request);
    assert_eq!(http.id, "4b1e8c3e-7d0a-4c59-9a1f-1f2d3c4b5a69");
    assert_eq!(http.method, "POST");
    assert_eq!(http.path, "/api/v1/items?id=7&x=%20");
    assert_eq!(http.host, "api.example.com:8443");
    assert_eq!(http.scheme, "https");
    assert_eq!(http.size, 0);
    assert_eq!(http.protocol, "HTTP/2");
    // Native leaves these empty: the path keeps its query, and no body is buffered.
    assert_eq!(
        (
            http.query.as_str(),
            http.fragment.as_str(),
            http.body.as_str()
        ),
        ("", "", "")
    );
    assert!(http.raw_body.is_empty());
    assert_eq!(http.header_map, None);

    let expected = map(&[
        (":method", "POST"),
        (":path", "/api/v1/items?id=7&x=%20"),
        (":authority", "api.example.com:8443"),
        (":scheme", "https"),
        ("x-request-id", "4b1e8c3e-7d0a-4c59-9a1f-1f2d3c4b5a69"),
        ("content-type", "application/json"),
        ("content-length", "42"),
        // Repeats joined with "," in arrival order, empty values kept in place.
        ("x-forwarded-for", "10.0.0.1,10.0.0.2,,10.0.0.3"),
        ("cookie", "a=1,b=2"),
        ("x-empty", ""),
        ("x-upper-case", "Shouting"),
        ("x-big", &big),
        ("x-unicode", "caf\u{e9} \u{2603} \u{1f600}"),
    ]);
    assert_eq!(http.headers, expected);
    assert!(!http.headers.contains_key("X-Upper-Case"));
}

#[test]
fn size_and_body_are_what_was_buffered_not_the_content_length() {
    // Native 1.40 reports the size of the body it buffered for the check, 0 without one,
    // whatever content-length says, and tells the server whether the body is whole.
    let check = |headers: &[(&[u8], &[u8])], body: Option<RequestBody<'_>>| {
        let attributes = RequestAttributes {
            headers,
            body,
            ..Default::default()
        };
        let request = decode(&encode(&attributes, &[]));
        let http = http(&request).clone();
        (
            http.size,
            http.body,
            http.raw_body,
            http.headers.get("x-envoy-auth-partial-body").cloned(),
        )
    };
    assert_eq!(
        check(&[(b"content-length", b"1048576")], None),
        (0, String::new(), vec![], None)
    );
    let whole = RequestBody {
        bytes: b"hello",
        buffered: 5,
        pack_as_bytes: false,
    };
    assert_eq!(
        check(&[(b"content-length", b"5")], Some(whole)),
        (5, "hello".into(), vec![], Some("false".into()))
    );
    // A client's own claim is replaced.
    let partial = RequestBody {
        bytes: b"hel",
        buffered: 5,
        pack_as_bytes: false,
    };
    assert_eq!(
        check(&[(b"x-envoy-auth-partial-body", b"false")], Some(partial)),
        (5, "hel".into(), vec![], Some("true".into()))
    );
    let raw = RequestBody {
        bytes: &[0xff, 0x00],
        buffered: 2,
        pack_as_bytes: true,
    };
    assert_eq!(
        check(&[], Some(raw)),
        (2, String::new(), vec![0xff, 0x00], Some("false".into()))
    );
    let latin1 = RequestBody {
        bytes: &[b'a', 0xff, b'b'],
        buffered: 3,
        pack_as_bytes: false,
    };
    assert_eq!(check(&[], Some(latin1)).1, "a!b");
}

#[test]
fn invalid_utf8_in_header_values_becomes_bangs_as_native() {
    let latin1 = [b'a', 0xe9, b'b', 0xc3, 0xa9, 0xff];
    let headers: [(&[u8], &[u8]); 2] = [(b"x-latin1", &latin1), (b"x-ok", b"fine")];
    let attributes = RequestAttributes {
        headers: &headers,
        ..Default::default()
    };
    let request = decode(&encode(&attributes, &[]));
    let http = http(&request);
    assert_eq!(http.headers["x-latin1"], "a!b\u{e9}!");
    assert_eq!(http.headers["x-ok"], "fine");
}

#[test]
fn minimal_request_has_empty_peers_and_fields() {
    let attributes = RequestAttributes {
        time: Duration::from_secs(5),
        ..Default::default()
    };
    let request = decode(&encode(&attributes, &[]));
    let attrs = request.attributes.as_ref().unwrap();
    // Both peers are always there, as native sends them; without an address, only that.
    assert_eq!(attrs.source, Some(Peer::default()));
    assert_eq!(attrs.destination, Some(Peer::default()));
    assert!(attrs.context_extensions.is_empty());
    let http = http(&request);
    assert_eq!(
        (
            http.id.as_str(),
            http.method.as_str(),
            http.path.as_str(),
            http.host.as_str(),
            http.scheme.as_str()
        ),
        ("", "", "", "", "")
    );
    assert!(http.headers.is_empty());
    assert_eq!(http.protocol, "");
    let time = attrs.request.as_ref().unwrap().time.unwrap();
    assert_eq!((time.seconds, time.nanos), (5, 0));
}

#[test]
fn socket_addresses_of_both_families() {
    for (source, destination, want_source, want_destination) in [
        (
            "127.0.0.1:1",
            "10.1.2.3:65535",
            ("127.0.0.1", 1),
            ("10.1.2.3", 65535),
        ),
        (
            "[::1]:40000",
            "[fe80::1%eth0]:80",
            ("::1", 40000),
            ("fe80::1%eth0", 80),
        ),
        (
            "[::ffff:10.0.0.1]:9000",
            "0.0.0.0:15006",
            ("::ffff:10.0.0.1", 9000),
            ("0.0.0.0", 15006),
        ),
    ] {
        let attributes = RequestAttributes {
            source: Some(SocketAddress::parse(source.as_bytes())),
            destination: Some(SocketAddress::parse(destination.as_bytes())),
            ..Default::default()
        };
        let request = decode(&encode(&attributes, &[]));
        let attrs = request.attributes.as_ref().unwrap();
        assert_eq!(
            socket(&attrs.source),
            (want_source.0.to_owned(), want_source.1),
            "{source}"
        );
        assert_eq!(
            socket(&attrs.destination),
            (want_destination.0.to_owned(), want_destination.1),
            "{destination}"
        );
    }
}

#[test]
fn large_context_extensions_and_headers_nest_correctly() {
    // Long values force multi-byte length prefixes at every nesting level.
    let long = "e".repeat(70_000);
    let config = Config::parse(
        format!(r#"{{"grpc_service": {{"envoy_grpc": {{"cluster_name": "c"}}}}, "context_extensions": {{"long": "{long}", "k": "v"}}}}"#)
            .as_bytes(),
    )
    .unwrap();
    let value = "h".repeat(200_000);
    let headers: Vec<(&[u8], &[u8])> = vec![
        (b":path", b"/"),
        (b"x-huge", value.as_bytes()),
        (b"x-huge", b"tail"),
    ];
    let attributes = RequestAttributes {
        headers: &headers,
        source: Some(SocketAddress::parse(b"1.2.3.4:5")),
        protocol: b"HTTP/1.1",
        time: Duration::new(1, 999_999_999),
        ..Default::default()
    };
    let request = decode(&encode(&attributes, &config.context_extensions.encoded));
    let attrs = request.attributes.as_ref().unwrap();
    assert_eq!(attrs.context_extensions.get("long"), Some(&long));
    assert_eq!(
        attrs.context_extensions.get("k").map(String::as_str),
        Some("v")
    );
    assert_eq!(socket(&attrs.source), ("1.2.3.4".to_owned(), 5));
    let http = http(&request);
    assert_eq!(http.headers.get("x-huge"), Some(&format!("{value},tail")));
    assert_eq!(http.path, "/");
    assert_eq!(http.protocol, "HTTP/1.1");
    let time = attrs.request.as_ref().unwrap().time.unwrap();
    assert_eq!((time.seconds, time.nanos), (1, 999_999_999));
}

#[test]
fn random_header_sets_decode_to_the_native_join() {
    // Few distinct names, mixed case, so repeats and case-folded collisions are common.
    let names = [
        "a",
        "B",
        "x-id",
        "X-Id",
        "cookie",
        "x-forwarded-for",
        ":path",
        "Accept",
        "accept",
        "k",
    ];
    let value_chars = [
        "a", "Z", "0", " ", ",", ";", "=", "/", "\"", "\t", "é", "☃", "😀", "%",
    ];
    let mut rng = Rng::seeded("WIRE_COMPAT_SEED", 0x5eed_1234_abcd_ef01);
    for case in 0..400 {
        let count = rng.below(24);
        let mut owned: Vec<(String, String)> = Vec::with_capacity(count);
        for _ in 0..count {
            let name = if rng.below(8) == 0 {
                rng.string(&["q", "R", "-", "_", "9"], 6) + "-h"
            } else {
                names[rng.below(names.len())].to_owned()
            };
            let value = if rng.below(50) == 0 {
                "v".repeat(rng.below(40_000))
            } else {
                rng.string(&value_chars, 12)
            };
            owned.push((name, value));
        }
        let headers: Vec<(&[u8], &[u8])> = owned
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();

        // The reference: native's loop over the header map.
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &owned {
            expected
                .entry(name.to_ascii_lowercase())
                .and_modify(|joined| {
                    joined.push(',');
                    joined.push_str(value);
                })
                .or_insert_with(|| value.clone());
        }

        let attributes = RequestAttributes {
            headers: &headers,
            time: Duration::from_secs(case),
            ..Default::default()
        };
        let request = decode(&encode(&attributes, &[]));
        let decoded: BTreeMap<String, String> =
            http(&request).headers.clone().into_iter().collect();
        assert_eq!(decoded, expected, "case {case}: {owned:?}");
        let path = expected
            .get(":path")
            .map(String::as_str)
            .unwrap_or_default();
        let first_path = owned
            .iter()
            .find(|(k, _)| k == ":path")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        assert_eq!(
            http(&request).path,
            first_path,
            "case {case}: path is the first :path, not {path:?}"
        );
    }
}

#[test]
fn filter_metadata_goes_into_metadata_context() {
    use envoy_types::pb::google::protobuf::{value::Kind, Struct};
    let config = serde_json::json!({"tenant": "acme"});
    let serde_json::Value::Object(object) = &config else {
        unreachable!()
    };
    let encoded = ext_authz_filter::proto::structpb::encode_struct(object);
    let metadata: [(&str, &[u8]); 2] = [("solo.auth.passthrough.config", &encoded), ("empty", &[])];
    let attributes = RequestAttributes {
        metadata: MetadataContext {
            filter_metadata: &metadata,
            typed_filter_metadata: &[],
        },
        ..Default::default()
    };
    let request = decode(&encode(&attributes, &[]));
    let context = request.attributes.unwrap().metadata_context.unwrap();
    let passed: &Struct = &context.filter_metadata["solo.auth.passthrough.config"];
    assert_eq!(
        passed.fields["tenant"].kind,
        Some(Kind::StringValue("acme".into()))
    );
    assert_eq!(context.filter_metadata["empty"], Struct::default());
}

#[test]
fn typed_metadata_goes_as_the_host_gave_it() {
    use envoy_types::pb::google::protobuf::Any;
    // The host hands over the whole Metadata; each Any goes on byte for byte, type URL and all.
    let any = Any {
        type_url: "type.googleapis.com/google.protobuf.StringValue".into(),
        value: vec![10, 3, b'a', b'b', b'c'],
    };
    let host_metadata = envoy_types::pb::envoy::config::core::v3::Metadata {
        typed_filter_metadata: [("acme.typed".to_owned(), any.clone())].into(),
        ..Default::default()
    }
    .encode_to_vec();
    let decoded = ext_authz_filter::proto::response::Metadata::decode(&host_metadata).unwrap();
    let typed: Vec<(&str, &[u8])> = decoded
        .typed_filter_metadata
        .iter()
        .map(|(ns, v)| (ns.as_str(), v.as_slice()))
        .collect();
    let attributes = RequestAttributes {
        metadata: MetadataContext {
            filter_metadata: &[],
            typed_filter_metadata: &typed,
        },
        route_metadata: MetadataContext {
            filter_metadata: &[],
            typed_filter_metadata: &typed,
        },
        ..Default::default()
    };
    let attrs = decode(&encode(&attributes, &[])).attributes.unwrap();
    assert_eq!(
        attrs.metadata_context.unwrap().typed_filter_metadata["acme.typed"],
        any
    );
    assert_eq!(
        attrs.route_metadata_context.unwrap().typed_filter_metadata["acme.typed"],
        any
    );
}

#[test]
fn allowed_disallowed_and_raw_headers_as_native() {
    use ext_authz_filter::check_request::HeaderSelection;
    let config = Config::parse(
        br#"{"grpc_service": {"envoy_grpc": {"cluster_name": "c"}},
             "allowed_headers": {"patterns": [{"prefix": "x-"}, {"exact": ":path"}]},
             "disallowed_headers": {"patterns": [{"exact": "x-a"}]}}"#,
    )
    .unwrap();
    let latin1 = [b'a', 0xe9];
    let headers: [(&[u8], &[u8]); 6] = [
        (b":path", b"/p"),
        (b":method", b"GET"),
        (b"x-a", b"1"),
        (b"x-b", b"2"),
        (b"x-b", b"3"),
        (b"x-latin1", &latin1),
    ];
    let attributes = RequestAttributes {
        headers: &headers,
        selection: Some(&config.headers),
        ..Default::default()
    };
    let request = decode(&encode(&attributes, &[]));
    let selected = http(&request);
    let mut names: Vec<&str> = selected.headers.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [":path", "x-b", "x-latin1"],
        "allowed, less the disallowed"
    );
    assert_eq!(selected.headers["x-b"], "2,3");
    assert_eq!(
        selected.method, "GET",
        "the fields stay whatever the selection"
    );

    let raw = HeaderSelection {
        raw: true,
        ..Default::default()
    };
    let attributes = RequestAttributes {
        headers: &headers,
        selection: Some(&raw),
        ..Default::default()
    };
    let request = decode(&encode(&attributes, &[]));
    let raw_http = http(&request);
    assert!(raw_http.headers.is_empty(), "header_map instead of headers");
    let map: Vec<(&str, &[u8])> = raw_http
        .header_map
        .as_ref()
        .unwrap()
        .headers
        .iter()
        .map(|h| (h.key.as_str(), h.raw_value.as_slice()))
        .collect();
    assert_eq!(
        map,
        [
            (":path", &b"/p"[..]),
            (":method", b"GET"),
            ("x-a", b"1"),
            ("x-b", b"2"),
            ("x-b", b"3"),
            ("x-latin1", &latin1)
        ],
        "every value apart, in order, bytes untouched"
    );
}

#[test]
fn tls_principals_and_sni() {
    use ext_authz_filter::check_request::Tls;
    let attributes = RequestAttributes {
        source: Some(SocketAddress::parse(b"127.0.0.1:5000")),
        destination: Some(SocketAddress::parse(b"127.0.0.1:443")),
        tls: Some(Tls {
            source_principal: b"spiffe://client",
            destination_principal: b"server.test",
            sni: Some(b"api.test"),
        }),
        ..Default::default()
    };
    let request = decode(&encode(&attributes, &[]));
    let attributes = request.attributes.unwrap();
    assert_eq!(attributes.source.unwrap().principal, "spiffe://client");
    assert_eq!(attributes.destination.unwrap().principal, "server.test");
    assert_eq!(attributes.tls_session.unwrap().sni, "api.test");
}
