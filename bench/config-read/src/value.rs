//! One JSON tree (serde_json's `Value`, no derives) walked by hand-written readers that know each
//! field's path, aliases and kind: unknown fields refused, errors named by path.
use serde_json::{Map, Value};

use crate::{duration_ms, Config};

/// An object's fields as (snake_case, lowerCamelCase) names; any other key is refused.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: &str, known: &[(&str, &str)]) -> Result<Self, String> {
        let Value::Object(map) = v else {
            return Err(format!("{path}: must be an object"));
        };
        for key in map.keys() {
            if !known
                .iter()
                .any(|(s, c)| key == s || (!c.is_empty() && key == c))
            {
                return Err(format!("{path}{key}: unknown field"));
            }
        }
        Ok(Self {
            map,
            path: path.to_owned(),
        })
    }
    fn get(&self, name: (&str, &str)) -> Result<Option<(&'a Value, String)>, String> {
        match (self.map.get(name.0), self.map.get(name.1)) {
            (Some(_), Some(_)) => Err(format!("{}{}: given twice", self.path, name.0)),
            (Some(v), None) | (None, Some(v)) => Ok(Some((v, format!("{}{}", self.path, name.0)))),
            (None, None) => Ok(None),
        }
    }
    fn bool(&self, name: (&str, &str)) -> Result<bool, String> {
        match self.get(name)? {
            None => Ok(false),
            Some((Value::Bool(b), _)) => Ok(*b),
            Some((_, p)) => Err(format!("{p}: must be true or false")),
        }
    }
    fn string(&self, name: (&str, &str)) -> Result<Option<String>, String> {
        match self.get(name)? {
            None => Ok(None),
            Some((Value::String(s), _)) => Ok(Some(s.clone())),
            Some((_, p)) => Err(format!("{p}: must be a string")),
        }
    }
    fn u32(&self, name: (&str, &str)) -> Result<Option<u32>, String> {
        match self.get(name)? {
            None => Ok(None),
            Some((v, p)) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("{p}: must be a whole number from 0 to 4294967295")),
        }
    }
    fn strings(&self, name: (&str, &str)) -> Result<Vec<String>, String> {
        match self.get(name)? {
            None => Ok(Vec::new()),
            Some((Value::Array(a), p)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{p}[{i}]: must be a string"))
                })
                .collect(),
            Some((_, p)) => Err(format!("{p}: must be a list")),
        }
    }
}

const TOP: &[(&str, &str)] = &[
    ("grpc_service", "grpcService"),
    ("failure_mode_allow", "failureModeAllow"),
    ("status_on_error", "statusOnError"),
    ("with_request_body", "withRequestBody"),
    ("allowed_headers", "allowedHeaders"),
    ("stat_prefix", "statPrefix"),
    ("include_tls_session", "includeTlsSession"),
    (
        "max_denied_response_body_bytes",
        "maxDeniedResponseBodyBytes",
    ),
    ("metadata_context_namespaces", "metadataContextNamespaces"),
    ("transport_api_version", "transportApiVersion"),
];

pub fn read(json: &[u8]) -> Result<Config, String> {
    let v: Value = serde_json::from_slice(json).map_err(|e| format!("is not JSON: {e}"))?;
    let top = Obj::new(&v, "", TOP)?;
    let (grpc, gp) = top.get(TOP[0])?.ok_or("grpc_service: is required")?;
    let grpc = Obj::new(
        grpc,
        &format!("{gp}."),
        &[("envoy_grpc", "envoyGrpc"), ("timeout", "")],
    )?;
    let (envoy, ep) = grpc
        .get(("envoy_grpc", "envoyGrpc"))?
        .ok_or("grpc_service.envoy_grpc: is required")?;
    let envoy = Obj::new(
        envoy,
        &format!("{ep}."),
        &[("cluster_name", "clusterName"), ("authority", "")],
    )?;
    let mut c = Config {
        cluster_name: envoy
            .string(("cluster_name", "clusterName"))?
            .ok_or("grpc_service.envoy_grpc.cluster_name: is required")?,
        authority: envoy.string(("authority", ""))?.unwrap_or_default(),
        timeout_ms: match grpc.string(("timeout", ""))? {
            Some(t) => duration_ms(&t).map_err(|e| format!("grpc_service.timeout: {e}"))?,
            None => 200,
        },
        failure_mode_allow: top.bool(TOP[1])?,
        status_on_error: 403,
        stat_prefix: top.string(TOP[5])?.unwrap_or_default(),
        include_tls_session: top.bool(TOP[6])?,
        max_denied_response_body_bytes: top.u32(TOP[7])?.unwrap_or(0),
        namespaces: top.strings(TOP[8])?,
        transport_api_version: top.string(TOP[9])?,
        ..Config::default()
    };
    if let Some((s, p)) = top.get(TOP[2])? {
        let s = Obj::new(s, &format!("{p}."), &[("code", "")])?;
        c.status_on_error = match s.get(("code", ""))? {
            Some((v, p)) => v
                .as_i64()
                .ok_or_else(|| format!("{p}: must be a whole number"))?,
            None => return Err(format!("{p}.code: is required")),
        };
    }
    if let Some((b, p)) = top.get(TOP[3])? {
        let b = Obj::new(
            b,
            &format!("{p}."),
            &[
                ("max_request_bytes", "maxRequestBytes"),
                ("allow_partial_message", "allowPartialMessage"),
                ("pack_as_bytes", "packAsBytes"),
            ],
        )?;
        c.max_request_bytes = b
            .u32(("max_request_bytes", "maxRequestBytes"))?
            .ok_or_else(|| format!("{p}.max_request_bytes: is required"))?;
        c.allow_partial_message = b.bool(("allow_partial_message", "allowPartialMessage"))?;
        c.pack_as_bytes = b.bool(("pack_as_bytes", "packAsBytes"))?;
    }
    if let Some((l, p)) = top.get(TOP[4])? {
        let l = Obj::new(l, &format!("{p}."), &[("patterns", "")])?;
        let Some((Value::Array(patterns), pp)) = l.get(("patterns", ""))? else {
            return Err(format!("{p}.patterns: must be a list"));
        };
        const KINDS: [&str; 4] = ["exact", "prefix", "suffix", "contains"];
        for (i, m) in patterns.iter().enumerate() {
            let path = format!("{pp}[{i}].");
            let m = Obj::new(
                m,
                &path,
                &[
                    ("exact", ""),
                    ("prefix", ""),
                    ("suffix", ""),
                    ("contains", ""),
                    ("ignore_case", "ignoreCase"),
                ],
            )?;
            let mut found = None;
            for (k, name) in KINDS.iter().enumerate() {
                if let Some(s) = m.string((name, ""))? {
                    if found.is_some() {
                        return Err(format!(
                            "{path}: exactly one of exact, prefix, suffix, contains"
                        ));
                    }
                    found = Some((k as u8, s));
                }
            }
            let (k, s) = found
                .ok_or_else(|| format!("{path}: exactly one of exact, prefix, suffix, contains"))?;
            c.allowed
                .push((k, s, m.bool(("ignore_case", "ignoreCase"))?));
        }
    }
    Ok(c)
}
