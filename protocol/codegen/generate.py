#!/usr/bin/env python3
"""Writes protocol/src/api/*.rs from Kafka's JSON message schemas.

Developer tool, not part of the build: the generated Rust is committed, and the crate
builds without the schemas. Run it again when an API is added or a schema is updated:

    python3 protocol/codegen/generate.py ../shared/kafka-protocol/schemas

Each API becomes one module holding its request and response, described once through the
`message!` macro (see protocol/src/message.rs). The API list below is the set Riffle
speaks; add a name here to generate another.
"""

import json
import pathlib
import re
import sys

APIS = [
    "Produce", "Fetch", "ListOffsets", "Metadata", "OffsetCommit", "OffsetFetch",
    "FindCoordinator", "JoinGroup", "Heartbeat", "LeaveGroup", "SyncGroup",
    "DescribeGroups", "ListGroups", "ApiVersions", "CreateTopics", "DeleteTopics",
    "DeleteRecords", "InitProducerId", "DescribeConfigs", "DeleteGroups",
    "CreatePartitions", "IncrementalAlterConfigs", "OffsetDelete", "DescribeCluster",
    "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn", "TxnOffsetCommit",
    "DescribeTransactions", "ListTransactions", "DescribeProducers",
    "SaslHandshake", "SaslAuthenticate", "DescribeUserScramCredentials",
    "AlterUserScramCredentials", "CreateAcls", "DescribeAcls", "DeleteAcls", "AlterConfigs",
    "DescribeLogDirs",
]

RUST_KEYWORDS = {"type", "match", "ref", "self", "struct", "mod", "fn", "use", "loop"}

PRIMITIVES = {
    "bool": "bool", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
    "uint16": "u16", "uint32": "u32", "float64": "f64", "string": "String",
    "bytes": "Bytes", "uuid": "Uuid", "records": "Bytes",
}


def load(path):
    text = re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M)
    return json.loads(text)


def snake(name):
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    return f"r#{name}" if name in RUST_KEYWORDS else name


def snake_file(name):
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def versions_expr(spec):
    """'3+' -> '3..', '0-4' -> '0..=4', '5' -> '5..=5'."""
    if spec.endswith("+"):
        return f"{int(spec[:-1])}.."
    if "-" in spec:
        low, high = spec.split("-")
        return f"{int(low)}..={int(high)}"
    return f"{int(spec)}..={int(spec)}"


def int_default(text):
    text = str(text)
    return str(int(text, 16) if text.lower().startswith("0x") else int(text))


class Module:
    def __init__(self, api):
        self.api = api
        self.structs = []  # rendered struct declarations, inner first
        self.names = set()
        self.common = {}
        self.direction = "Request"

    def rust_type(self, field, struct_name_prefix):
        kind = field["type"]
        nullable = "nullableVersions" in field
        if kind.startswith("[]"):
            inner = kind[2:]
            if inner in PRIMITIVES:
                element = PRIMITIVES[inner]
            else:
                element = self.struct_for(inner, field, struct_name_prefix)
            rust = f"Vec<{element}>"
        elif kind in PRIMITIVES:
            rust = PRIMITIVES[kind]
            if kind == "records":
                nullable = True
                if self.direction == "Response":
                    # A response's records may stay in a file until the socket write
                    # (sendfile); see protocol/src/fetch_records.rs.
                    rust = "crate::FetchRecords"

        else:
            rust = self.struct_for(kind, field, struct_name_prefix)
        return (f"Option<{rust}>" if nullable else rust), nullable

    def struct_for(self, name, field, prefix):
        if "fields" in field:
            unique = name if name not in self.names else f"{prefix}{name}"
            self.emit_struct(unique, field["fields"], field.get("about", ""), prefix)
            return unique
        if name in self.common:
            if name not in self.names:
                self.emit_struct(name, self.common[name], "", prefix)
            return name
        raise SystemExit(f"{self.api}: unknown type {name}")

    def default(self, field, rust, nullable):
        kind = field["type"]
        text = field.get("default")
        text = None if text is None else str(text)
        if nullable and (text == "null" or kind == "records"):
            return "None"
        if kind.startswith("[]"):
            value = "Vec::new()"
        elif kind == "bool":
            value = "true" if text == "true" else "false"
        elif kind in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
            value = int_default(text) if text else "0"
        elif kind == "float64":
            value = f"{float(text)}" if text else "0.0"
        elif kind == "string":
            value = f'String::from("{text}")' if text else "String::new()"
        elif kind == "bytes":
            value = "Bytes::new()"
        elif kind == "uuid":
            value = "Uuid::ZERO"
        else:
            value = f"{rust}::default()"
        return f"Some({value})" if nullable else value

    def emit_struct(self, name, fields, about, prefix):
        self.names.add(name)
        lines = []
        positional = [f for f in fields if "tag" not in f and f["versions"] != "none"]
        tagged = sorted((f for f in fields if "tag" in f), key=lambda f: f["tag"])
        for field in positional + tagged:
            rust, nullable = self.rust_type(field, prefix)
            doc = field.get("about", "").replace("\n", " ").strip() or field["name"]
            versions = field.get("taggedVersions", field["versions"]) if "tag" in field else field["versions"]
            tag = f"; tag {field['tag']}" if "tag" in field else ""
            lines.append(f"        /// {doc}")
            lines.append(
                f"        {snake(field['name'])}: {rust} = {self.default(field, rust, nullable)};"
                f" versions {versions_expr(versions)}{tag},"
            )
        doc = about.strip() or name
        body = "\n".join(lines)
        self.structs.append(f"message! {{\n    /// {doc}\n    {name} {{\n{body}\n    }}\n}}\n")


def generate(schemas, out_dir):
    modules = []
    for api in APIS:
        module = Module(api)
        lines = []
        for direction in ("Request", "Response"):
            module.direction = direction
            schema = load(schemas / f"{api}{direction}.json")
            for common in schema.get("commonStructs", []):
                module.common[common["name"]] = common["fields"]
            name = f"{api}{direction}"
            module.emit_struct(name, schema["fields"], f"The {api} {direction.lower()}.", direction)
            low, high = schema["validVersions"].split("-") if "-" in schema["validVersions"] else (schema["validVersions"],) * 2
            flexible = schema.get("flexibleVersions", "none")
            flex = "None" if flexible == "none" else f"Some({int(flexible.rstrip('+'))})"
            lines.append(
                f"api_message!({name}, api_key {schema['apiKey']}, versions {low}..={high}, flexible {flex});"
            )
            key = schema["apiKey"]
        modules.append((api, key))
        file = out_dir / f"{snake_file(api)}.rs"
        header = (
            f"//! {api} (API key {key}): request and response, as the upstream schema defines them.\n"
            "//!\n"
            "//! Generated by `protocol/codegen/generate.py` from Kafka's JSON schemas; edit the\n"
            "//! generator, not this file. Which versions Riffle advertises is decided in\n"
            "//! `api/mod.rs`, not here.\n\n"
            "#![allow(clippy::all)]\n\n"
            "#[allow(unused_imports)]\n"
            "use bytes::Bytes;\n\n"
            "#[allow(unused_imports)]\n"
            "use crate::codec::Uuid;\n\n"
        )
        file.write_text(header + "\n".join(module.structs) + "\n" + "\n".join(lines) + "\n")
    write_index(modules, out_dir)


def write_index(modules, out_dir):
    mods = "\n".join(f"pub mod {snake_file(api)};" for api, _ in modules)
    uses = "\n".join(
        f"pub use {snake_file(api)}::{{{api}Request, {api}Response}};" for api, _ in modules
    )
    keys = "\n".join(f"    /// {api}\n    {api} = {key}," for api, key in modules)
    from_arms = "\n".join(f"            {key} => Some(ApiKey::{api})," for api, key in modules)
    name_arms = "\n".join(f'            ApiKey::{api} => "{api}",' for api, _ in modules)
    range_arms = "\n".join(
        f"            ApiKey::{api} => ({api}Request::MIN_VERSION, {api}Request::MAX_VERSION),"
        for api, _ in modules
    )
    flex_arms = "\n".join(
        f"            ApiKey::{api} => {api}Request::FIRST_FLEXIBLE_VERSION," for api, _ in modules
    )
    request_variants = "\n".join(f"    /// {api}\n    {api}({api}Request)," for api, _ in modules)
    response_variants = "\n".join(f"    /// {api}\n    {api}({api}Response)," for api, _ in modules)
    decode_arms = "\n".join(
        f"            ApiKey::{api} => Request::{api}(Wire::decode(body, ctx)?)," for api, _ in modules
    )
    sample_arms = "\n".join(
        f"            ApiKey::{api} => (\n"
        f"                Request::{api}(Sample::sample(rng, ctx)),\n"
        f"                Response::{api}(Sample::sample(rng, ctx)),\n"
        f"            ),"
        for api, _ in modules
    )
    all_keys = ", ".join(f"ApiKey::{api}" for api, _ in modules)
    request_key_arms = "\n".join(f"            Request::{api}(_) => ApiKey::{api}," for api, _ in modules)
    response_key_arms = "\n".join(f"            Response::{api}(_) => ApiKey::{api}," for api, _ in modules)
    encode_arms = "\n".join(f"            Response::{api}(body) => body.encode(buf, ctx)," for api, _ in modules)
    request_encode_arms = "\n".join(f"            Request::{api}(body) => body.encode(buf, ctx)," for api, _ in modules)
    response_decode_arms = "\n".join(
        f"            ApiKey::{api} => Response::{api}(Wire::decode(body, ctx)?)," for api, _ in modules
    )
    text = INDEX.format(
        keys=keys, from_arms=from_arms, name_arms=name_arms,
        range_arms=range_arms, flex_arms=flex_arms, request_variants=request_variants,
        response_variants=response_variants, decode_arms=decode_arms,
        request_key_arms=request_key_arms, response_key_arms=response_key_arms,
        encode_arms=encode_arms, request_encode_arms=request_encode_arms,
        response_decode_arms=response_decode_arms, sample_arms=sample_arms, all_keys=all_keys,
    )
    (out_dir / "dispatch.rs").write_text(text)
    (out_dir / "mod.rs").write_text(MOD.format(mods=mods, uses=uses))


MOD = """//! One module per Kafka API, each holding that API's request and response types.
//!
//! The message types are generated from Kafka's JSON schemas by
//! `protocol/codegen/generate.py` and can decode every version the schema defines. Which
//! versions the broker *advertises* is the broker's decision, in its ApiVersions handler.
//! [`dispatch`] holds the [`ApiKey`], [`Request`] and [`Response`] enums.

{mods}

pub mod dispatch;

{uses}
pub use dispatch::{{ApiKey, ApiMessage, Request, Response}};
"""

INDEX = """//! The [`ApiKey`] enum, and the [`Request`] and [`Response`] enums with their decode and
//! encode dispatch: one arm per API.
//!
//! Generated by `protocol/codegen/generate.py`; edit the generator, not this file.

use bytes::{{Bytes, BytesMut}};

use crate::codec::{{Ctx, Wire}};
use crate::DecodeError;
use super::*;

/// Facts about a top-level request or response type.
pub trait ApiMessage {{
    /// The API key on the wire.
    const API_KEY: i16;
    /// The lowest version the schema defines.
    const MIN_VERSION: i16;
    /// The highest version the schema defines.
    const MAX_VERSION: i16;
    /// The first version that uses compact types and tagged fields, if any.
    const FIRST_FLEXIBLE_VERSION: Option<i16>;
}}

/// The API keys this codec knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i16)]
pub enum ApiKey {{
{keys}
}}

impl ApiKey {{
    /// The key for a wire value, if we know it.
    pub fn from_i16(key: i16) -> Option<ApiKey> {{
        match key {{
{from_arms}
            _ => None,
        }}
    }}

    /// The API's name, as Kafka spells it.
    pub fn name(self) -> &'static str {{
        match self {{
{name_arms}
        }}
    }}

    /// The lowest and highest versions the schema defines (and this codec can decode).
    pub fn schema_versions(self) -> (i16, i16) {{
        match self {{
{range_arms}
        }}
    }}

    /// The first flexible version, if any.
    pub fn first_flexible_version(self) -> Option<i16> {{
        match self {{
{flex_arms}
        }}
    }}
}}

/// A decoded request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {{
{request_variants}
}}

impl Request {{
    /// Decodes a request body of the given API and version.
    pub(crate) fn decode_body(api_key: ApiKey, body: &mut Bytes, ctx: Ctx) -> Result<Request, DecodeError> {{
        Ok(match api_key {{
{decode_arms}
        }})
    }}

    /// Encodes the body (clients and tests use this; the broker only decodes requests).
    pub(crate) fn encode_body(&self, buf: &mut BytesMut, ctx: Ctx) {{
        match self {{
{request_encode_arms}
        }}
    }}

    /// The request's API.
    pub fn api_key(&self) -> ApiKey {{
        match self {{
{request_key_arms}
        }}
    }}
}}

/// A response body, ready to encode.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {{
{response_variants}
}}

impl Response {{
    /// Encodes the body at the given version.
    pub(crate) fn encode_body(&self, buf: &mut BytesMut, ctx: Ctx) {{
        match self {{
{encode_arms}
        }}
    }}

    /// Decodes a response body (clients and tests use this).
    pub(crate) fn decode_body(api_key: ApiKey, body: &mut Bytes, ctx: Ctx) -> Result<Response, DecodeError> {{
        Ok(match api_key {{
{response_decode_arms}
        }})
    }}

    /// The response's API.
    pub fn api_key(&self) -> ApiKey {{
        match self {{
{response_key_arms}
        }}
    }}
}}

/// Every API this codec knows.
pub const ALL_API_KEYS: &[ApiKey] = &[{all_keys}];

/// A random request and response of one API, for round-trip property tests.
#[cfg(test)]
pub(crate) fn sample_messages(
    api_key: ApiKey,
    rng: &mut crate::codec::sample::SampleRng,
    ctx: Ctx,
) -> (Request, Response) {{
    use crate::codec::sample::Sample;
    match api_key {{
{sample_arms}
    }}
}}
"""

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py SCHEMA_DIR")
    root = pathlib.Path(__file__).resolve().parent.parent
    generate(pathlib.Path(sys.argv[1]), root / "src" / "api")
