//! One representative slice of the plugin's raw config types (7 structs: the top level, gRPC
//! service, its envoy_grpc, HttpStatus, with_request_body, and the header list matchers), read
//! from JSON by one approach per feature, so that the module's size says what each approach weighs.
//! `parse` is exported so that nothing is dropped; it returns a digest of what it read, or 0.

#[cfg(feature = "derive")]
mod derive;
#[cfg(feature = "mini")]
mod mini;
#[cfg(feature = "nano")]
mod nano;
#[cfg(feature = "value")]
mod value;

/// What every approach builds: the typed result (same for all).
#[derive(Default, Debug)]
pub struct Config {
    pub cluster_name: String,
    pub authority: String,
    pub timeout_ms: u64,
    pub failure_mode_allow: bool,
    pub status_on_error: i64,
    pub max_request_bytes: u32,
    pub allow_partial_message: bool,
    pub pack_as_bytes: bool,
    pub allowed: Vec<(u8, String, bool)>,
    pub stat_prefix: String,
    pub include_tls_session: bool,
    pub max_denied_response_body_bytes: u32,
    pub namespaces: Vec<String>,
    pub transport_api_version: Option<String>,
}

/// "1.5s" as protobuf JSON writes a Duration, to milliseconds.
pub fn duration_ms(s: &str) -> Result<u64, String> {
    let digits = s
        .strip_suffix('s')
        .ok_or_else(|| format!("{s:?} is not a duration"))?;
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let whole: u64 = whole
        .parse()
        .map_err(|_| format!("{s:?} is not a duration"))?;
    let mut ms = 0u64;
    for (i, c) in frac.chars().take(3).enumerate() {
        let d = c
            .to_digit(10)
            .ok_or_else(|| format!("{s:?} is not a duration"))? as u64;
        ms += d * [100, 10, 1][i];
    }
    Ok(whole * 1000 + ms)
}

fn digest(c: &Config) -> u32 {
    (c.cluster_name.len()
        + c.authority.len()
        + c.timeout_ms as usize
        + c.status_on_error as usize
        + c.max_request_bytes as usize
        + c.allowed
            .iter()
            .map(|a| a.1.len() + a.0 as usize)
            .sum::<usize>()
        + c.namespaces.len()
        + c.stat_prefix.len()
        + c.transport_api_version.as_ref().map_or(0, String::len)
        + usize::from(c.failure_mode_allow)
        + usize::from(c.include_tls_session)
        + c.max_denied_response_body_bytes as usize) as u32
}

/// # Safety
/// `ptr` points at `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn parse(ptr: *const u8, len: usize) -> u32 {
    let json = unsafe { core::slice::from_raw_parts(ptr, len) };
    #[cfg(feature = "derive")]
    let read = derive::read(json);
    #[cfg(feature = "value")]
    let read = value::read(json);
    #[cfg(feature = "mini")]
    let read = mini::read(json);
    #[cfg(feature = "nano")]
    let read = nano::read(json);
    #[cfg(feature = "tree")]
    let read: Result<Config, String> = match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(v) => Ok(Config {
            stat_prefix: format!("{}", v.as_object().map_or(0, |o| o.len())),
            ..Config::default()
        }),
        Err(e) => Err(format!("is not JSON: {e}")),
    };
    #[cfg(feature = "none")]
    // The floor the filter pays anyway: allocation, UTF-8, formatting of strings and integers.
    let read: Result<Config, String> =
        Err(format!("{}: {}", String::from_utf8_lossy(json), json.len()));
    match read {
        Ok(c) => digest(&c),
        // An error's text is kept (as the filter logs it), not just its existence.
        Err(e) => e.len() as u32 | 0x8000_0000,
    }
}

#[cfg(test)]
mod tests {
    const SAMPLE: &str = r#"{"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz", "authority": "a.b"}, "timeout": "0.25s"},
        "failure_mode_allow": false, "status_on_error": {"code": 401},
        "with_request_body": {"max_request_bytes": 8192, "allow_partial_message": true},
        "allowed_headers": {"patterns": [{"exact": "authorization"}, {"prefix": "x-", "ignore_case": true}]},
        "stat_prefix": "p", "metadata_context_namespaces": ["a", "b"], "transport_api_version": "V3"}"#;

    #[test]
    fn reads_the_sample() {
        #[cfg(not(any(feature = "none", feature = "tree")))]
        {
            let got = unsafe { super::parse(SAMPLE.as_ptr(), SAMPLE.len()) };
            // 9 + 3 + 250 + 401 + 8192 + (13 + 0) + (2 + 1) + 2 + 1 + 2
            assert_eq!(got, 9 + 3 + 250 + 401 + 8192 + 13 + 3 + 2 + 1 + 2);
            let bad = r#"{"grpc_service": {"envoy_grpc": {"cluster_name": 7}}}"#;
            assert!(unsafe { super::parse(bad.as_ptr(), bad.len()) } & 0x8000_0000 != 0);
        }
    }
}
