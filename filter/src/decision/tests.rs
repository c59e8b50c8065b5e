#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `HeaderValueOption.append` is deprecated in Envoy but still sent by servers, so it is tested.
#![allow(deprecated)]

use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption, QueryParameter};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::pb::google::rpc::Status;
use prost::Message;

use super::*;

const GRPC_OK: i32 = 0;
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_UNAUTHENTICATED: i32 = 16;

fn option(key: &str, value: &str, append: Option<bool>, append_action: i32) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        append: append.map(|value| BoolValue { value }),
        append_action,
        ..Default::default()
    }
}

fn set(key: &str, value: &str) -> HeaderValueOption {
    option(key, value, None, 2)
}

fn mutation(name: &str, value: &str, action: HeaderAction) -> HeaderMutation {
    HeaderMutation {
        name: name.into(),
        value: value.as_bytes().to_vec(),
        action,
    }
}

fn status(code: i32) -> Option<Status> {
    Some(Status {
        code,
        message: String::new(),
        details: Vec::new(),
    })
}

fn decide(response: &CheckResponse) -> Decision {
    decide_bytes(&response.encode_to_vec())
}

fn decide_bytes(bytes: &[u8]) -> Decision {
    Answer::from_check_response(bytes, &MutationPolicy::default()).decision
}

fn ok_response(ok: OkHttpResponse) -> CheckResponse {
    CheckResponse {
        status: status(GRPC_OK),
        http_response: Some(HttpResponse::OkResponse(ok)),
        ..Default::default()
    }
}

fn denied(code: Option<i32>, headers: Vec<HeaderValueOption>, body: &str) -> DeniedHttpResponse {
    DeniedHttpResponse {
        status: code.map(|code| HttpStatus { code }),
        headers,
        body: body.into(),
    }
}

fn allowed(decision: Decision) -> Allow {
    match decision {
        Decision::Allow(allow) => allow,
        other => panic!("expected Allow, got {other:?}"),
    }
}

fn denied_reply(decision: Decision) -> LocalReply {
    match decision {
        Decision::Deny(reply) => reply,
        other => panic!("expected Deny, got {other:?}"),
    }
}

#[track_caller]
fn assert_malformed(decision: Decision, reason_part: &str) {
    match decision {
        Decision::Error(CheckError::Undecodable(why)) => {
            assert!(
                why.contains(reason_part),
                "{why:?} does not mention {reason_part:?}"
            )
        }
        other => panic!("expected Undecodable, got {other:?}"),
    }
}

#[test]
fn ok_with_every_kind_of_change() {
    let response = ok_response(OkHttpResponse {
        headers: vec![
            set("X-User", "alice"),
            option("x-add", "1", None, 0),
            option("x-if-absent", "2", None, 1),
            option("x-overwrite", "3", None, 3),
        ],
        headers_to_remove: vec![
            "X-Remove-Me".into(),
            ":path".into(),
            ":authority".into(),
            "host".into(),
            "Host".into(),
            "authorization".into(),
        ],
        response_headers_to_add: vec![set("x-resp", "r"), option("Set-Cookie", "a=b", None, 0)],
        query_parameters_to_set: vec![
            QueryParameter {
                key: "tenant".into(),
                value: "acme".into(),
            },
            QueryParameter {
                key: "empty".into(),
                value: String::new(),
            },
        ],
        query_parameters_to_remove: vec!["token".into(), "debug".into()],
        ..Default::default()
    });
    let allow = allowed(decide(&response));
    assert_eq!(
        allow,
        Allow {
            request_headers: vec![
                mutation("x-user", "alice", HeaderAction::Set),
                mutation("x-add", "1", HeaderAction::Set),
                mutation("x-if-absent", "2", HeaderAction::AddIfAbsent),
                mutation("x-overwrite", "3", HeaderAction::OverwriteIfExists),
            ],
            headers_to_remove: vec!["x-remove-me".into(), "authorization".into()],
            response_headers: vec![
                mutation("x-resp", "r", HeaderAction::Set),
                mutation("set-cookie", "a=b", HeaderAction::Add),
            ],
            query_parameters_to_set: vec![
                ("tenant".into(), "acme".into()),
                ("empty".into(), String::new())
            ],
            query_parameters_to_remove: vec!["token".into(), "debug".into()],
        }
    );
    assert!(allow.changes_query());
}

#[test]
fn append_and_append_action_map_to_header_actions() {
    // (append, append_action) -> (request action, response action). As native 1.40: on request
    // headers `append: true` joins and anything else overwrites, the default
    // APPEND_IF_EXISTS_OR_ADD included; on response headers the default adds. Explicit
    // ADD_IF_ABSENT and OVERWRITE_IF_EXISTS are honoured.
    use HeaderAction::*;
    let cases = [
        (None, 0, Set, Add),
        (None, 1, AddIfAbsent, AddIfAbsent),
        (None, 2, Set, Set),
        (None, 3, OverwriteIfExists, OverwriteIfExists),
        (Some(true), 0, Append, Add),
        (Some(true), 1, Append, Add),
        (Some(true), 2, Append, Add),
        (Some(true), 3, Append, Add),
        (Some(false), 0, Set, Set),
        (Some(false), 1, Set, Set),
        (Some(false), 2, Set, Set),
        (Some(false), 3, Set, Set),
    ];
    for (append, append_action, on_request, on_response) in cases {
        let header = option("x-h", "v", append, append_action);
        let allow = allowed(decide(&ok_response(OkHttpResponse {
            headers: vec![header.clone()],
            response_headers_to_add: vec![header.clone()],
            ..Default::default()
        })));
        let context = format!("append {append:?}, append_action {append_action}");
        assert_eq!(
            allow.request_headers,
            vec![mutation("x-h", "v", on_request)],
            "{context}"
        );
        assert_eq!(
            allow.response_headers,
            vec![mutation("x-h", "v", on_response)],
            "{context}"
        );

        let reply = denied_reply(decide(&CheckResponse {
            status: status(GRPC_PERMISSION_DENIED),
            http_response: Some(HttpResponse::DeniedResponse(denied(
                Some(401),
                vec![header],
                "",
            ))),
            ..Default::default()
        }));
        // A denial keeps only the headers to set, as native's local reply does.
        let on_reply = match (append, append_action) {
            (Some(true), _) => vec![],
            (None, 0) => vec![mutation("x-h", "v", Set)],
            _ => vec![mutation("x-h", "v", on_response)],
        };
        assert_eq!(reply.headers, on_reply, "denied: {context}");
    }
}

#[test]
fn raw_value_is_not_read_as_native() {
    // Native 1.40 reads `value` only: a server that sends `raw_value` alone sets an empty value.
    let header = HeaderValueOption {
        header: Some(HeaderValue {
            key: "x-raw".into(),
            value: "text".into(),
            raw_value: b"raw\xffbytes".to_vec(),
        }),
        append_action: 2,
        ..Default::default()
    };
    let allow = allowed(decide(&ok_response(OkHttpResponse {
        headers: vec![header],
        ..Default::default()
    })));
    assert_eq!(allow.request_headers[0].value, b"text");
}

#[test]
fn ok_without_ok_response_allows_unchanged() {
    for response in [
        CheckResponse {
            status: status(GRPC_OK),
            ..Default::default()
        },
        // No status at all is code 0, OK, as native reads it.
        CheckResponse::default(),
        // An OK status with a denied_response still allows, as native: the status decides.
        CheckResponse {
            status: status(GRPC_OK),
            http_response: Some(HttpResponse::DeniedResponse(denied(
                Some(401),
                vec![],
                "no",
            ))),
            ..Default::default()
        },
    ] {
        let allow = allowed(decide(&response));
        assert_eq!(allow, Allow::default());
        assert!(!allow.changes_query());
    }
}

#[test]
fn denied_with_status_headers_and_body() {
    let response = CheckResponse {
        status: status(GRPC_UNAUTHENTICATED),
        http_response: Some(HttpResponse::DeniedResponse(denied(
            Some(401),
            vec![
                set("WWW-Authenticate", "Bearer realm=\"api\""),
                option("x-why", "expired", None, 0),
            ],
            "{\"error\":\"token expired\"}",
        ))),
        ..Default::default()
    };
    assert_eq!(
        denied_reply(decide(&response)),
        LocalReply {
            status: 401,
            headers: vec![
                mutation(
                    "www-authenticate",
                    "Bearer realm=\"api\"",
                    HeaderAction::Set
                ),
                mutation("x-why", "expired", HeaderAction::Set),
            ],
            body: b"{\"error\":\"token expired\"}".to_vec(),
            details: DETAILS_DENIED.into(),
        }
    );
}

#[test]
fn denied_without_status_is_forbidden() {
    for http_status in [None, Some(0)] {
        let response = CheckResponse {
            status: status(GRPC_PERMISSION_DENIED),
            http_response: Some(HttpResponse::DeniedResponse(denied(
                http_status,
                vec![set("x-a", "b")],
                "nope",
            ))),
            ..Default::default()
        };
        let reply = denied_reply(decide(&response));
        assert_eq!(reply.status, 403, "{http_status:?}");
        assert_eq!(reply.headers, vec![mutation("x-a", "b", HeaderAction::Set)]);
        assert_eq!(reply.body, b"nope");
        assert_eq!(reply.details, DETAILS_DENIED);
    }
}

#[test]
fn non_ok_status_without_denied_response_is_forbidden() {
    let forbidden = LocalReply {
        status: 403,
        headers: vec![],
        body: vec![],
        details: DETAILS_DENIED.into(),
    };
    for code in [GRPC_PERMISSION_DENIED, GRPC_UNAUTHENTICATED, 2, 14] {
        assert_eq!(
            decide(&CheckResponse {
                status: status(code),
                ..Default::default()
            }),
            Decision::Deny(forbidden.clone())
        );
        // An ok_response under a non-OK status does not let the request through.
        let ok = ok_response(OkHttpResponse {
            headers: vec![set("x-user", "alice")],
            ..Default::default()
        });
        let response = CheckResponse {
            status: status(code),
            ..ok
        };
        assert_eq!(
            decide(&response),
            Decision::Deny(forbidden.clone()),
            "code {code}"
        );
    }
}

#[test]
fn error_response_is_an_error() {
    let with_status = CheckResponse {
        status: status(GRPC_UNAUTHENTICATED),
        http_response: Some(HttpResponse::ErrorResponse(denied(
            Some(503),
            vec![set("retry-after", "5")],
            "busy",
        ))),
        ..Default::default()
    };
    assert_eq!(
        decide(&with_status),
        Decision::Error(CheckError::ErrorResponse {
            status: Some(503),
            headers: vec![mutation("retry-after", "5", HeaderAction::Set)],
            body: b"busy".to_vec(),
        })
    );

    // Even under an OK status, error_response reports the server's own failure.
    let without_status = CheckResponse {
        status: status(GRPC_OK),
        http_response: Some(HttpResponse::ErrorResponse(denied(None, vec![], ""))),
        ..Default::default()
    };
    assert_eq!(
        decide(&without_status),
        Decision::Error(CheckError::ErrorResponse {
            status: None,
            headers: vec![],
            body: vec![]
        })
    );

    assert_malformed(
        decide(&CheckResponse {
            http_response: Some(HttpResponse::ErrorResponse(denied(Some(42), vec![], ""))),
            ..Default::default()
        }),
        "error_response.status",
    );
}

#[test]
fn garbage_is_malformed_never_a_panic() {
    for bytes in [
        &[0xff_u8, 0xff, 0xff][..],
        &[0x0a, 0x05, 0x01],                   // status: length past the end
        &[0x07],                               // wire type 7 does not exist
        &[0x0a, 0x02, 0x08],                   // status.code: varint cut short
        &[0x1a, 0x03, 0x12, 0x05, 0x0a],       // ok_response.headers: nested length past the end
        &[0x12, 0x02, 0x1a, 0x01],             // denied_response.body cut short
        &[0x1a, 0x04, 0x2a, 0x02, 0xc3, 0x28], // headers_to_remove: invalid UTF-8
        b"HTTP/1.1 200 OK\r\n\r\n",
    ] {
        assert!(
            matches!(
                decide_bytes(bytes),
                Decision::Error(CheckError::Undecodable(_))
            ),
            "{bytes:?} was not refused"
        );
    }

    // Every prefix of a real response, and seeded random bytes: a decision or an error, no panic.
    let full = ok_response(OkHttpResponse {
        headers: vec![set("x-user", "alice"), option("x-a", "b", Some(true), 0)],
        headers_to_remove: vec!["x-r".into()],
        query_parameters_to_set: vec![QueryParameter {
            key: "k".into(),
            value: "v".into(),
        }],
        ..Default::default()
    })
    .encode_to_vec();
    let mut malformed = 0;
    for cut in 0..full.len() {
        if matches!(
            decide_bytes(&full[..cut]),
            Decision::Error(CheckError::Undecodable(_))
        ) {
            malformed += 1;
        }
    }
    assert!(
        malformed > full.len() / 2,
        "only {malformed} of {} prefixes refused",
        full.len()
    );
    assert!(matches!(decide_bytes(&full), Decision::Allow(_)));

    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..2000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|i| (state.rotate_left(i as u32 * 8) >> 56) as u8 ^ (i as u8).wrapping_mul(31))
            .collect();
        let _ = decide_bytes(&bytes);
    }
}

fn decide_with(response: &CheckResponse, validate: bool) -> Decision {
    let policy = MutationPolicy {
        validate,
        rules: None,
    };
    Answer::from_check_response(&response.encode_to_vec(), &policy).decision
}

/// The reply of a refused answer, and whether it counts as denied too.
fn refused(decision: Decision) -> (u16, String, String, bool) {
    match decision {
        Decision::Invalid(invalid) => (
            invalid.reply.status,
            String::from_utf8_lossy(&invalid.reply.body).into_owned(),
            invalid.reply.details.into_owned(),
            invalid.denied,
        ),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn invalid_500(denied: bool) -> (u16, String, String, bool) {
    (500, String::new(), DETAILS_INVALID.to_owned(), denied)
}

#[test]
fn an_invalid_name_is_quoted_escaped_as_native_quotes_it() {
    // Each seen from native 1.40 (host-tests/tests/mutation_rules.rs compares the replies).
    let cases = [
        ("x-a\r\nb", r"x-a\r\nb"),
        ("x-nl\n\tname", r"x-nl\n\tname"),
        ("x-q\"", r#"x-q\""#),
        ("x-b\\s", r"x-b\\s"),
        ("x-n\0ul", r"x-n\u0000ul"),
        ("x-v\x0b\x0c", r"x-v\u000b\f"),
        ("x-d\x7fel", "x-d\x7fel"),
        ("x-\u{e9}", "x-\u{e9}"),
        ("x a", "x a"),
    ];
    for (name, quoted) in cases {
        let request = ok_response(OkHttpResponse {
            headers: vec![set(name, "v")],
            ..Default::default()
        });
        let (status, body, details, _) = refused(decide_with(&request, false));
        assert_eq!(status, 503);
        assert_eq!(body, format!("invalid header name: {quoted}"), "{name:?}");
        assert_eq!(
            details,
            format!(
                "filter_removed_required_request_headers{{invalid_header_name:_{}}}",
                quoted.replace(' ', "_")
            )
        );
    }
}

#[test]
fn invalid_header_changes_get_natives_outcomes() {
    let bad_values = [
        "a\r\nx-injected: 1",
        "a\nb",
        "a\rb",
        "a\0b",
        "a\x01b",
        "a\x7fb",
    ];
    for value in bad_values {
        let header = set("x-h", value);
        let request = ok_response(OkHttpResponse {
            headers: vec![set("x-ok", "1"), header.clone()],
            ..Default::default()
        });
        // validate_mutations: 500, whatever the failure mode.
        assert_eq!(refused(decide_with(&request, true)), invalid_500(false));
        // Without it native writes the value and Envoy refuses the request: 503.
        assert_eq!(
            refused(decide_with(&request, false)),
            (
                503,
                "invalid header value for: x-h".to_owned(),
                "filter_removed_required_request_headers{invalid_header_value_for:_x-h}".to_owned(),
                false
            ),
            "{value:?}"
        );
        // Into the client's response, or a local reply, either way refused (native would
        // write them as they are without validate_mutations: header injection).
        for validate in [false, true] {
            let response_header = ok_response(OkHttpResponse {
                response_headers_to_add: vec![header.clone()],
                ..Default::default()
            });
            assert_eq!(
                refused(decide_with(&response_header, validate)),
                invalid_500(false)
            );
            let denial = CheckResponse {
                status: status(GRPC_PERMISSION_DENIED),
                http_response: Some(HttpResponse::DeniedResponse(denied(
                    Some(401),
                    vec![header.clone()],
                    "",
                ))),
                ..Default::default()
            };
            assert_eq!(refused(decide_with(&denial, validate)), invalid_500(true));
            let error = CheckResponse {
                http_response: Some(HttpResponse::ErrorResponse(denied(
                    Some(500),
                    vec![header.clone()],
                    "",
                ))),
                ..Default::default()
            };
            assert_eq!(refused(decide_with(&error, validate)), invalid_500(false));
        }
    }
    for name in ["", "bad name", "x-h:", "x\u{e9}", "a\nb", "(x)"] {
        let request = ok_response(OkHttpResponse {
            headers: vec![set(name, "v")],
            ..Default::default()
        });
        assert_eq!(refused(decide_with(&request, true)), invalid_500(false));
        let (status, body, details, _) = refused(decide_with(&request, false));
        assert_eq!(status, 503);
        assert_eq!(
            body,
            format!("invalid header name: {}", name.replace('\n', "\\n"))
        );
        assert!(
            details.starts_with("filter_removed_required_request_headers{invalid_header_name:"),
            "{details:?}"
        );
        assert!(
            !details.contains(' ') && !details.contains('\n'),
            "{details:?}"
        );
        // A removal that cannot be made is skipped, as native skips it.
        let removal = ok_response(OkHttpResponse {
            headers_to_remove: vec![name.into(), "x-gone".into()],
            ..Default::default()
        });
        for validate in [false, true] {
            assert_eq!(
                allowed(decide_with(&removal, validate)).headers_to_remove,
                ["x-gone"]
            );
        }
    }
    // What native accepts: tab, bytes from 0x80, spaces at either end, a pseudo-header.
    let fine = ok_response(OkHttpResponse {
        headers: vec![
            set("x-tab", "a\tb"),
            set("x-utf8", "caf\u{e9}"),
            set("x-spaces", " v  "),
            set(":path", "/elsewhere"),
        ],
        response_headers_to_add: vec![set("x-resp", "caf\u{e9}")],
        ..Default::default()
    });
    assert_eq!(allowed(decide_with(&fine, true)).request_headers.len(), 4);
}

#[test]
fn validate_mutations_refuses_query_text_that_needs_encoding() {
    let query = |key: &str, value: &str| {
        ok_response(OkHttpResponse {
            query_parameters_to_set: vec![QueryParameter {
                key: key.into(),
                value: value.into(),
            }],
            ..Default::default()
        })
    };
    for (key, value) in [
        ("k", "a b"),
        ("k", "a&b"),
        ("a#b", "v"),
        ("k", "%41"),
        ("k", "~"),
    ] {
        assert_eq!(
            refused(decide_with(&query(key, value), true)),
            invalid_500(false)
        );
        // Without it the text goes as it is, as native sends it.
        assert_eq!(
            allowed(decide_with(&query(key, value), false)).query_parameters_to_set,
            [(key.to_owned(), value.to_owned())]
        );
    }
    for (key, value) in [("k", "aZ09*-._"), ("", ""), ("k", "")] {
        assert_eq!(
            allowed(decide_with(&query(key, value), true))
                .query_parameters_to_set
                .len(),
            1
        );
    }
}

#[test]
fn unknown_append_action_overwrites_as_native() {
    for action in [4, 99, -1] {
        let allow = allowed(decide(&ok_response(OkHttpResponse {
            headers: vec![option("x-h", "v", None, action)],
            ..Default::default()
        })));
        assert_eq!(allow.request_headers[0].action, HeaderAction::Set);
    }
}

#[test]
fn denied_status_out_of_range_is_malformed() {
    for code in [1, 99, 600, 70_000, -403] {
        assert_malformed(
            decide(&CheckResponse {
                status: status(GRPC_PERMISSION_DENIED),
                http_response: Some(HttpResponse::DeniedResponse(denied(Some(code), vec![], ""))),
                ..Default::default()
            }),
            "denied_response.status",
        );
    }
}

fn every_error() -> Vec<CheckError> {
    vec![
        CheckError::Dispatch(1),
        CheckError::Grpc {
            status: 14,
            message: "unavailable".into(),
        },
        CheckError::Grpc {
            status: 4,
            message: "timeout".into(),
        },
        CheckError::Undecodable("bad".into()),
        CheckError::ErrorResponse {
            status: None,
            headers: vec![],
            body: vec![],
        },
        CheckError::ErrorResponse {
            status: Some(503),
            headers: vec![mutation("retry-after", "5", HeaderAction::Set)],
            body: b"busy".to_vec(),
        },
    ]
}

#[test]
fn failure_mode_deny_answers_with_status_on_error() {
    let mode = FailureMode::Deny {
        status_on_error: 503,
    };
    for error in every_error().into_iter().take(5) {
        assert_eq!(
            Decision::Error(error.clone()).into_verdict(mode),
            Verdict::Reply(LocalReply {
                status: 503,
                headers: vec![],
                body: vec![],
                details: DETAILS_ERROR.into()
            }),
            "{error:?}"
        );
    }
    // The server's own error reply wins over status_on_error, headers and body included.
    assert_eq!(
        Decision::Error(every_error().pop().unwrap()).into_verdict(FailureMode::Deny {
            status_on_error: 403
        }),
        Verdict::Reply(LocalReply {
            status: 503,
            headers: vec![mutation("retry-after", "5", HeaderAction::Set)],
            body: b"busy".to_vec(),
            details: DETAILS_ERROR.into(),
        })
    );
    // An error_response without a status takes status_on_error but keeps its headers and body.
    let error = CheckError::ErrorResponse {
        status: None,
        headers: vec![mutation("x-e", "1", HeaderAction::Add)],
        body: b"down".to_vec(),
    };
    assert_eq!(
        Decision::Error(error).into_verdict(FailureMode::Deny {
            status_on_error: 500
        }),
        Verdict::Reply(LocalReply {
            status: 500,
            headers: vec![mutation("x-e", "1", HeaderAction::Add)],
            body: b"down".to_vec(),
            details: DETAILS_ERROR.into(),
        })
    );
}

#[test]
fn failure_mode_allow_lets_errors_through() {
    let marked = Allow {
        request_headers: vec![mutation(
            "x-envoy-auth-failure-mode-allowed",
            "true",
            HeaderAction::Set,
        )],
        ..Allow::default()
    };
    assert_eq!(
        FAILURE_MODE_ALLOWED_HEADER,
        "x-envoy-auth-failure-mode-allowed"
    );
    for error in every_error() {
        assert_eq!(
            Decision::Error(error.clone()).into_verdict(FailureMode::Allow { add_header: false }),
            Verdict::Continue(Allow::default()),
            "{error:?}"
        );
        assert_eq!(
            Decision::Error(error.clone()).into_verdict(FailureMode::Allow { add_header: true }),
            Verdict::Continue(marked.clone()),
            "{error:?}"
        );
    }
}

#[test]
fn decisions_ignore_the_failure_mode() {
    let allow = Allow {
        headers_to_remove: vec!["x-a".into()],
        ..Allow::default()
    };
    let reply = LocalReply {
        status: 401,
        headers: vec![],
        body: b"no".to_vec(),
        details: DETAILS_DENIED.into(),
    };
    for mode in [
        FailureMode::Deny {
            status_on_error: 503,
        },
        FailureMode::Allow { add_header: false },
        FailureMode::Allow { add_header: true },
    ] {
        assert_eq!(
            Decision::Allow(allow.clone()).into_verdict(mode),
            Verdict::Continue(allow.clone())
        );
        assert_eq!(
            Decision::Deny(reply.clone()).into_verdict(mode),
            Verdict::Reply(reply.clone())
        );
    }
}

#[test]
fn end_to_end_verdicts_from_bytes() {
    let deny_mode = FailureMode::Deny {
        status_on_error: 403,
    };
    let bytes = CheckResponse {
        status: status(GRPC_PERMISSION_DENIED),
        http_response: Some(HttpResponse::DeniedResponse(denied(
            Some(401),
            vec![],
            "who are you",
        ))),
        ..Default::default()
    }
    .encode_to_vec();
    match decide_bytes(&bytes).into_verdict(FailureMode::Allow { add_header: true }) {
        // A real denial is never turned into a pass by failure_mode_allow.
        Verdict::Reply(reply) => {
            assert_eq!((reply.status, &*reply.details), (401, DETAILS_DENIED));
            assert_eq!(reply.body, b"who are you");
        }
        other => panic!("{other:?}"),
    }
    match decide_bytes(b"\xff\xff").into_verdict(deny_mode) {
        Verdict::Reply(reply) => assert_eq!((reply.status, &*reply.details), (403, DETAILS_ERROR)),
        other => panic!("{other:?}"),
    }
}
