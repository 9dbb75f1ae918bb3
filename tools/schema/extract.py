#!/usr/bin/env python3
"""Derives kcp's proto/ schema files from upstream Kubernetes reference data.

Developer tool (not run by the build or CI). Usage:

    tools/schema/extract.py [--check] /path/to/k8s-ref [proto-dir]

Inputs (facts only; no upstream prose is copied):
  * k8s-ref/openapi-v3/v1.32/**.json   field names, types, required, patch strategies, list types,
                                       enums, defaults, group-version-kinds, REST paths and verbs
  * k8s-ref/testdata/v1.32/*.{json,pb} JSON field order (Go struct order) and protobuf field
                                       numbers, found by aligning each .pb field with its JSON key
  * tools/schema/facts.txt             what the above cannot tell: types without an OpenAPI schema,
                                       field numbers without a fixture, ambiguous alignments,
                                       pointer-ness, short names and categories, our descriptions

Outputs: proto/*.proto (proto2, one file per API package, fields in JSON order with kcp
annotations in `// @kcp` comments) and proto/resources.tsv. See docs/SCHEMA.md.
"""
import base64
import datetime
import json
import os
import re
import struct
import sys
import urllib.parse
from collections import OrderedDict, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))

# Group-versions kcp serves, as OpenAPI v3 document paths.
GV_DOCS = [
    "api/v1", "apis/apps/v1", "apis/batch/v1", "apis/coordination.k8s.io/v1",
    "apis/discovery.k8s.io/v1", "apis/rbac.authorization.k8s.io/v1",
    "apis/networking.k8s.io/v1", "apis/policy/v1", "apis/storage.k8s.io/v1",
    "apis/scheduling.k8s.io/v1", "apis/autoscaling/v1", "apis/autoscaling/v2",
    "apis/events.k8s.io/v1", "apis/apiextensions.k8s.io/v1",
    "apis/authentication.k8s.io/v1", "apis/authorization.k8s.io/v1",
]
# Fixture file prefixes (group.version) whose kinds we model.
FIXTURE_GVS = {
    "core.v1", "apps.v1", "batch.v1", "coordination.k8s.io.v1", "discovery.k8s.io.v1",
    "rbac.authorization.k8s.io.v1", "networking.k8s.io.v1", "policy.v1", "storage.k8s.io.v1",
    "scheduling.k8s.io.v1", "autoscaling.v1", "autoscaling.v2", "events.k8s.io.v1",
    "apidiscovery.k8s.io.v2", "authentication.k8s.io.v1", "authorization.k8s.io.v1",
}

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
RUNTIME = "io.k8s.apimachinery.pkg.runtime."
CRD = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."

# JSON mapping of special message types (the generator keys its C tables on these names).
SPECIAL = {
    META + "Time": "time",
    META + "MicroTime": "microtime",
    META + "Duration": "duration",
    META + "FieldsV1": "rawjson",
    META + "Verbs": "stringlist",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
    RUNTIME + "RawExtension": "rawjson",
    CRD + "JSON": "rawjson",
    CRD + "JSONSchemaPropsOrArray": "schemaorarray",
    CRD + "JSONSchemaPropsOrBool": "schemaorbool",
    CRD + "JSONSchemaPropsOrStringArray": "schemaorstringarray",
    "io.k8s.api.authentication.v1.ExtraValue": "stringlist",
    "io.k8s.api.authorization.v1.ExtraValue": "stringlist",
}
# Fixed protobuf shapes of the special types (upstream facts).
SPECIAL_FIELDS = {
    "time": [("seconds", "int64", 1), ("nanos", "int32", 2)],
    "microtime": [("seconds", "int64", 1), ("nanos", "int32", 2)],
    "duration": [("duration", "int64", 1)],
    "quantity": [("string", "string", 1)],
    "intorstring": [("type", "int64", 1), ("intVal", "int32", 2), ("strVal", "string", 3)],
    "rawjson": [("raw", "bytes", 1)],
    "stringlist": [("items", "repeated string", 1)],
}

C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while bool true false""".split())

# Proto file per package prefix of a definition name.
def package_of(defname):
    return defname.rsplit(".", 1)[0]


def proto_package(pkg):
    return pkg.replace("-", "_")


def file_of(pkg):
    p = pkg
    for pre in ("io.k8s.api.", "io.k8s.apimachinery.pkg.apis.", "io.k8s.apimachinery.pkg.",
                "io.k8s.apiextensions-apiserver.pkg.apis."):
        if p.startswith(pre):
            p = p[len(pre):]
            break
    return p.replace(".", "_") + ".proto"


def die(msg):
    sys.stderr.write("extract: " + msg + "\n")
    sys.exit(1)


# ------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------

def load_openapi(ref):
    schemas, paths = {}, {}
    for gv in GV_DOCS:
        fn = os.path.join(ref, "openapi-v3", "v1.32", gv + ".json")
        with open(fn) as f:
            doc = json.load(f)
        for k, v in doc["components"]["schemas"].items():
            schemas.setdefault(k, v)
        paths[gv] = doc["paths"]
    return schemas, paths


class Facts:
    """tools/schema/facts.txt: line-oriented facts that the reference data cannot give."""

    def __init__(self, fn):
        self.types = OrderedDict()   # defname -> {"opts": {...}, "props": [(name, type, num, opts)]}
        self.num = {}                # (def, field) -> number
        self.ptr = set()             # (def, field) scalars that are Go pointers
        self.val = set()             # (def, field) Go values (omitempty) despite a guess otherwise
        self.desc = {}               # def or (def, field) -> our own description
        self.short = {}              # resource -> ([shortNames], [categories])
        self.order = {}              # def -> [field names] JSON order when no fixture shows it
        self.inline = {}             # parent def -> (field, number, child def, [own fields])
        cur = None
        with open(fn) as f:
            for ln, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                if line.startswith("  ") and cur is not None:
                    parts = line.split()
                    name, typ = parts[0], parts[1]
                    num = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
                    opts = parts[3:] if num is not None else parts[2:]
                    cur["props"].append((name, typ, num, opts))
                    continue
                cur = None
                w = line.split(None, 2)
                kind = w[0]
                if kind == "type":
                    cur = {"opts": w[2].split() if len(w) > 2 else [], "props": []}
                    self.types[w[1]] = cur
                elif kind == "num":
                    d, fld = w[1].rsplit(".", 1)
                    self.num[(d, fld)] = int(w[2])
                elif kind == "ptr":
                    for x in line.split()[1:]:
                        d, fld = x.rsplit(".", 1)
                        self.ptr.add((d, fld))
                elif kind == "val":
                    for x in line.split()[1:]:
                        d, fld = x.rsplit(".", 1)
                        self.val.add((d, fld))
                elif kind == "desc":
                    key = w[1]
                    if key.count("/") == 1:
                        d, fld = key.split("/")
                        self.desc[(d, fld)] = w[2]
                    else:
                        self.desc[key] = w[2]
                elif kind == "inline":
                    parts = line.split()
                    for parent in parts[4].split(","):
                        self.inline[parent] = (parts[1], int(parts[2]), parts[3], parts[5:])
                elif kind == "order":
                    self.order[w[1]] = w[2].split()
                elif kind == "short":
                    parts = line.split()
                    sn = parts[2].split(",") if parts[2] != "-" else []
                    cats = parts[3].split(",") if len(parts) > 3 and parts[3] != "-" else []
                    self.short[parts[1]] = (sn, cats)
                else:
                    die("%s:%d: unknown fact %r" % (fn, ln, kind))


# Extra (non-OpenAPI) types from facts become schema dicts of the same shape as OpenAPI ones.
def facts_type_to_schema(defname, t):
    props = OrderedDict()
    schema = {"type": "object", "properties": props, "x-kcp-order": [], "x-kcp-nums": {}}
    for o in t["opts"]:
        if o.startswith("gvk="):
            g, v, k = o[4:].split("/")
            schema.setdefault("x-kubernetes-group-version-kind", []).append(
                {"group": g, "version": v, "kind": k})
        elif o == "typemeta":
            schema["x-kcp-typemeta"] = True
            props["kind"] = {"type": "string"}
            props["apiVersion"] = {"type": "string"}
            schema["x-kcp-order"] += ["kind", "apiVersion"]
    for name, typ, num, opts in t["props"]:
        p = type_expr_to_prop(typ)
        for o in opts:
            if o == "retype":
                continue
            k, _, v = o.partition("=")
            p[k] = json.loads(urllib.parse.unquote(v)) if v else True
        props[name] = p
        schema["x-kcp-order"].append(name)
        if num is not None:
            schema["x-kcp-nums"][name] = num
    return schema


def type_expr_to_prop(t):
    if t.startswith("[]"):
        return {"type": "array", "items": type_expr_to_prop(t[2:])}
    if t.startswith("map:"):
        return {"type": "object", "additionalProperties": type_expr_to_prop(t[4:])}
    scal = {"string": {"type": "string"}, "int32": {"type": "integer", "format": "int32"},
            "int64": {"type": "integer", "format": "int64"}, "bool": {"type": "boolean"},
            "double": {"type": "number", "format": "double"},
            "bytes": {"type": "string", "format": "byte"}}
    if t in scal:
        return dict(scal[t])
    return {"$ref": "#/components/schemas/" + t}


# ------------------------------------------------------------------------------------------
# Property typing
# ------------------------------------------------------------------------------------------

def unref(p):
    """Returns the $ref target of a property (allOf-wrapped or direct), or None."""
    if "$ref" in p:
        return p["$ref"].rsplit("/", 1)[1]
    if "allOf" in p and len(p["allOf"]) == 1 and "$ref" in p["allOf"][0]:
        return p["allOf"][0]["$ref"].rsplit("/", 1)[1]
    return None


def prop_shape(p):
    """('scalar', ptype) | ('msg', def) | ('list', inner) | ('map', inner); inner is a shape."""
    r = unref(p)
    if r:
        return ("msg", r)
    t = p.get("type")
    if t == "array":
        return ("list", prop_shape(p.get("items", {})))
    if t == "object" and "additionalProperties" in p:
        return ("map", prop_shape(p["additionalProperties"]))
    if t == "string":
        return ("scalar", "bytes" if p.get("format") == "byte" else "string")
    if t == "integer":
        return ("scalar", "int32" if p.get("format") == "int32" else "int64")
    if t == "boolean":
        return ("scalar", "bool")
    if t == "number":
        return ("scalar", "double")
    return ("scalar", "unknown")


# ------------------------------------------------------------------------------------------
# Protobuf wire decoding and fixture alignment
# ------------------------------------------------------------------------------------------

def varint(b, i):
    r = s = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i
        if s > 70:
            raise ValueError("long varint")


def pb_fields(b):
    i, out = 0, []
    while i < len(b):
        k, i = varint(b, i)
        num, wt = k >> 3, k & 7
        if num == 0:
            raise ValueError("field 0")
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            if i + n > len(b):
                raise ValueError("truncated")
            v = bytes(b[i:i + n])
            i += n
        elif wt == 1:
            v = bytes(b[i:i + 8])
            i += 8
        elif wt == 5:
            v = bytes(b[i:i + 4])
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        out.append((num, wt, v))
    return out


def pb_leaves(b, depth=0, acc=None):
    """Multiset of scalar leaves found anywhere under a pb buffer (best-effort parse)."""
    if acc is None:
        acc = defaultdict(int)
    try:
        fs = pb_fields(b)
    except ValueError:
        return acc
    for num, wt, v in fs:
        if wt == 0:
            acc[("i", v)] += 1
        elif wt == 2:
            try:
                acc[("s", v.decode("utf-8"))] += 1
            except UnicodeDecodeError:
                pass
            if depth < 40:
                pb_leaves(v, depth + 1, acc)
    return acc


def rfc3339_seconds(s):
    s = s.replace("Z", "+00:00")
    return int(datetime.datetime.fromisoformat(s).timestamp())


def json_leaves(v, acc=None):
    if acc is None:
        acc = defaultdict(int)
    if isinstance(v, dict):
        for k, x in v.items():
            json_leaves(x, acc)
    elif isinstance(v, list):
        for x in v:
            json_leaves(x, acc)
    elif isinstance(v, bool):
        acc[("i", 1 if v else 0)] += 1
    elif isinstance(v, int):
        acc[("i", v & 0xFFFFFFFFFFFFFFFF)] += 1
    elif isinstance(v, str):
        acc[("s", v)] += 1
        if re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", v):
            try:
                acc[("i", rfc3339_seconds(v))] += 1
            except ValueError:
                pass
    return acc


def leaf_score(jv, bufs):
    jl = json_leaves(jv)
    pl = defaultdict(int)
    for b in bufs:
        for k, n in pb_leaves(b).items():
            pl[k] += n
        try:
            pl[("s", b.decode("utf-8"))] += 1
        except UnicodeDecodeError:
            pass
    hit = sum(min(n, pl.get(k, 0)) for k, n in jl.items())
    if not hit:
        return 0.0
    # Jaccard: a sibling message holding a superset of these leaves scores lower.
    return hit / (sum(jl.values()) + sum(pl.values()) - hit)


class Aligner:
    def __init__(self, schemas):
        self.schemas = schemas
        self.evidence = defaultdict(lambda: defaultdict(int))  # (def, field) -> {num: count}
        self.ambig = defaultdict(set)                          # (def, field) -> candidate sets
        self.order = {}                                        # def -> JSON key order seen
        self.seen = set()                                      # defs reached by fixtures
        self.typemeta = set()                                  # defs with json-only kind/apiVersion
        self.unmatched = {}                                    # (def, key) -> unused pb numbers

    def scalar_match(self, ptype, jv, wt, v):
        if ptype in ("string",):
            return wt == 2 and isinstance(jv, str) and v == jv.encode("utf-8")
        if ptype == "bytes":
            try:
                return wt == 2 and v == base64.b64decode(jv)
            except Exception:
                return False
        if ptype in ("int32", "int64"):
            return wt == 0 and isinstance(jv, int) and v == (jv & 0xFFFFFFFFFFFFFFFF)
        if ptype == "bool":
            return wt == 0 and isinstance(jv, bool) and v == (1 if jv else 0)
        if ptype == "double":
            return wt == 1 and isinstance(jv, (int, float)) and struct.unpack("<d", v)[0] == jv
        return False

    def special_match(self, kind, jv, wt, v):
        if wt != 2:
            return 0.0
        try:
            fs = dict((n, x) for n, _, x in pb_fields(v))
        except ValueError:
            return 0.0
        if kind in ("time", "microtime"):
            try:
                return 1.0 if fs.get(1) == rfc3339_seconds(jv) else 0.0
            except (ValueError, TypeError, AttributeError):
                return 0.0
        if kind == "quantity":
            return 1.0 if isinstance(jv, str) and fs.get(1) == jv.encode() else 0.0
        if kind == "intorstring":
            if isinstance(jv, str):
                return 1.0 if fs.get(3) == jv.encode() else 0.0
            return 1.0 if fs.get(2) == jv else 0.0
        if kind == "rawjson":
            try:
                return 1.0 if json.loads(fs.get(1, b"null")) == jv else 0.0
            except (ValueError, TypeError):
                return 0.0
        if kind == "stringlist":
            return 1.0 if isinstance(jv, list) and jv and fs.get(1) == jv[0].encode() else 0.0
        return leaf_score(jv, [v])

    def fold_inline(self, schema, obj):
        inl = schema.get("x-kcp-inline-field")
        if not inl:
            return obj
        fld, child = inl
        cprops = self.schemas[child]["properties"]
        folded, sub = OrderedDict(), OrderedDict()
        for k, v in obj.items():
            if k in cprops:
                sub[k] = v
                if fld not in folded:
                    folded[fld] = sub
            else:
                folded[k] = v
        return folded

    def struct_score(self, defname, obj, buf, depth):
        """Fraction of the JSON keys that some field of the pb message matches, recursively."""
        schema = self.schemas.get(defname)
        if schema is None:
            return 0.0
        if depth > 3:
            return leaf_score(obj, [buf])
        try:
            fs = pb_fields(buf)
        except ValueError:
            return 0.0
        obj = self.fold_inline(schema, obj)
        props = schema.get("properties", {})
        groups = OrderedDict()
        for num, wt, v in fs:
            groups.setdefault(num, []).append((wt, v))
        keys = [k for k in obj if k in props]
        if not keys:
            return 1.0 if not fs else 0.0
        tot = 0.0
        for k in keys:
            shape = prop_shape(props[k])
            best = 0.0
            for num, occ in groups.items():
                best = max(best, self.field_score(shape, obj[k], occ, depth + 1))
                if best >= 1.0:
                    break
            tot += best
        # Symmetric: a pb message with many fields the JSON does not have is a worse match.
        return tot / max(len(keys), len(groups))

    def elem_score(self, shape, jv, wt, v, depth=0):
        """How well one pb field occurrence matches one JSON value of the given shape (0..1)."""
        kind, arg = shape
        if kind == "scalar":
            return 1.0 if self.scalar_match(arg, jv, wt, v) else 0.0
        if kind == "msg":
            sp = SPECIAL.get(arg)
            if sp:
                return self.special_match(sp, jv, wt, v)
            if wt != 2 or not isinstance(jv, dict):
                return 0.0
            return self.struct_score(arg, jv, v, depth)
        return 0.0

    def field_score(self, shape, jv, occ, depth=0):
        """Score of a group of occurrences (same field number) against a JSON property."""
        kind, arg = shape
        if kind in ("scalar", "msg"):
            if len(occ) != 1:
                return 0.0
            return self.elem_score(shape, jv, occ[0][0], occ[0][1], depth)
        if kind == "list":
            if not isinstance(jv, list) or len(jv) != len(occ) or not jv:
                return 0.0
            return sum(self.elem_score(arg, x, o[0], o[1], depth) for x, o in zip(jv, occ)) / len(jv)
        if kind == "map":
            if not isinstance(jv, dict) or len(jv) != len(occ) or not jv:
                return 0.0
            tot = 0.0
            for (k, x), (wt, v) in zip(sorted(jv.items()), occ):
                if wt != 2:
                    return 0.0
                try:
                    ent = dict((n, (w, y)) for n, w, y in pb_fields(v))
                except ValueError:
                    return 0.0
                if ent.get(1, (None, None))[1] != k.encode():
                    return 0.0
                w, y = ent.get(2, (2, b""))
                if x is None and w == 2 and y == b"":
                    tot += 1.0
                    continue
                tot += self.elem_score(arg, x, w, y, depth) if arg[0] != "scalar" or \
                    x not in ("", 0) else 1.0
            return tot / len(jv)
        return 0.0

    def align(self, defname, obj, buf):
        schema = self.schemas.get(defname)
        if schema is None or not isinstance(obj, dict):
            return
        if SPECIAL.get(defname):
            return
        self.seen.add(defname)
        obj = self.fold_inline(schema, obj)
        keys = list(obj.keys())
        if defname not in self.order or len(keys) > len(self.order[defname]):
            self.order[defname] = keys
        props = schema.get("properties", {})
        groups = OrderedDict()
        for num, wt, v in pb_fields(buf):
            groups.setdefault(num, []).append((wt, v))
        cands = {}
        for k in keys:
            if k not in props:
                die("%s: fixture key %r not in schema" % (defname, k))
            shape = prop_shape(props[k])
            scores = {}
            for num, occ in groups.items():
                s = self.field_score(shape, obj[k], occ)
                if s > 0:
                    scores[num] = s
            if scores:
                best = max(scores.values())
                cands[k] = sorted(n for n, s in scores.items() if s >= best - 1e-9)
            else:
                cands[k] = []
        # Fixed numbers from facts or an earlier unambiguous fixture settle candidates first.
        assigned = {}
        for k in keys:
            known = schema.get("x-kcp-nums", {}).get(k)
            if known is not None and known in groups:
                assigned[k] = known
        changed = True
        while changed:
            changed = False
            used = set(assigned.values())
            for k in keys:
                if k in assigned:
                    continue
                c = [n for n in cands[k] if n not in used]
                if len(c) == 1:
                    assigned[k] = c[0]
                    used.add(c[0])
                    changed = True
        # Several keys sharing the same candidate set (e.g. many bools set to true): upstream
        # numbers follow Go struct order, so assign them in order; facts override when not.
        pending = [k for k in keys if k not in assigned and cands[k]]
        bysets = defaultdict(list)
        used = set(assigned.values())
        for k in pending:
            bysets[tuple(n for n in cands[k] if n not in used)].append(k)
        for cset, ks in bysets.items():
            if len(cset) == len(ks) and cset:
                for k, n in zip(ks, cset):
                    assigned[k] = n
                    self.ambig[(defname, k)].add(cset)
        left = set(groups) - set(assigned.values())
        for k in keys:
            if k not in assigned:
                if k in ("kind", "apiVersion") and not cands[k]:
                    self.typemeta.add(defname)
                    continue
                self.unmatched[(defname, k)] = sorted(left)
                continue
            num = assigned[k]
            self.evidence[(defname, k)][num] += 1
            shape = prop_shape(props[k])
            occ = groups.get(num, [])
            try:
                self.recurse(shape, obj[k], occ)
            except ValueError as e:
                die("%s.%s: field %d does not parse (%s); candidates %s" % (defname, k, num, e,
                                                                          cands[k]))

    def recurse(self, shape, jv, occ):
        kind, arg = shape
        if kind == "msg":
            if occ and not SPECIAL.get(arg):
                self.align(arg, jv, occ[0][1])
        elif kind == "list" and arg[0] == "msg" and isinstance(jv, list):
            for x, (wt, v) in zip(jv, occ):
                if not SPECIAL.get(arg[1]):
                    self.align(arg[1], x, v)
        elif kind == "map" and arg[0] == "msg" and isinstance(jv, dict):
            for (k, x), (wt, v) in zip(sorted(jv.items()), occ):
                ent = dict((n, y) for n, _, y in pb_fields(v))
                if not SPECIAL.get(arg[1]) and 2 in ent:
                    self.align(arg[1], x, ent[2])


def unknown_envelope(buf):
    if buf[:4] != b"k8s\x00":
        die("fixture without the k8s protobuf magic")
    env = dict((n, v) for n, _, v in pb_fields(buf[4:]))
    tm = dict((n, v) for n, _, v in pb_fields(env.get(1, b"")))
    return tm.get(1, b"").decode(), tm.get(2, b"").decode(), env.get(2, b"")


# ------------------------------------------------------------------------------------------
# Model building
# ------------------------------------------------------------------------------------------

def reachable(schemas, roots):
    seen, stack = set(), list(roots)
    while stack:
        d = stack.pop()
        if d in seen or d not in schemas:
            continue
        seen.add(d)
        for p in schemas[d].get("properties", {}).values():
            sh = prop_shape(p)
            while sh[0] in ("list", "map"):
                sh = sh[1]
            if sh[0] == "msg":
                stack.append(sh[1])
    return seen


def build(ref, facts):
    schemas, paths = load_openapi(ref)
    for d, t in facts.types.items():
        if d in schemas:
            # Facts may complete an OpenAPI schema (e.g. numbers); merge field-level data.
            s = facts_type_to_schema(d, t)
            schemas[d].setdefault("x-kcp-nums", {}).update(s["x-kcp-nums"])
            for name, typ, num, opts in t["props"]:
                if "retype" in opts:
                    old = schemas[d]["properties"][name]
                    new = type_expr_to_prop(typ)
                    for k, v in old.items():
                        if k.startswith("x-kubernetes-") or k == "description":
                            new[k] = v
                    schemas[d]["properties"][name] = new
            if s["x-kcp-order"]:
                schemas[d]["x-kcp-order"] = s["x-kcp-order"]
            continue
        schemas[d] = facts_type_to_schema(d, t)
    # Every built-in list type is {metadata = 1, items = 2} on the wire (upstream convention).
    for n, s in schemas.items():
        props = s.get("properties", {})
        if n.endswith("List") and "items" in props and "metadata" in props:
            s.setdefault("x-kcp-nums", {}).setdefault("metadata", 1)
            s["x-kcp-nums"].setdefault("items", 2)
    for (d, f), n in facts.num.items():
        if d not in schemas:
            die("facts: num for unknown type %s" % d)
        schemas[d].setdefault("x-kcp-nums", {})[f] = n

    for parent, (fld, num, child, own) in facts.inline.items():
        ps = schemas[parent]
        props = ps["properties"]
        cprops = OrderedDict((k, v) for k, v in props.items() if k not in own)
        creq = [r for r in ps.get("required", []) if r in cprops]
        if child not in schemas:
            schemas[child] = {"type": "object", "properties": cprops, "x-kcp-inline-child": True}
            if creq:
                schemas[child]["required"] = creq
        nprops = OrderedDict((k, v) for k, v in props.items() if k in own)
        nprops[fld] = {"$ref": "#/components/schemas/" + child, "x-kcp-inline": True}
        ps["properties"] = nprops
        if "required" in ps:
            ps["required"] = [r for r in ps["required"] if r in own]
        ps.setdefault("x-kcp-nums", {})[fld] = num
        ps["x-kcp-inline-field"] = (fld, child)

    for d, f in sorted(facts.ptr | facts.val):
        props = schemas.get(d, {}).get("properties", {})
        child = schemas.get(d, {}).get("x-kcp-inline-field")
        if f not in props and not (child and f in schemas[child[1]]["properties"]):
            die("facts: ptr/val for unknown field %s.%s" % (d, f))

    gvk_index = defaultdict(list)
    for n, s in schemas.items():
        for g in s.get("x-kubernetes-group-version-kind", []):
            gvk_index[(g["group"], g["version"], g["kind"])].append(n)

    al = Aligner(schemas)
    fixtures = []
    fdir = os.path.join(ref, "testdata", "v1.32")
    for fn in sorted(os.listdir(fdir)):
        if not fn.endswith(".json"):
            continue
        base = fn[:-5]
        gv = base.rsplit(".", 1)[0]
        if gv not in FIXTURE_GVS:
            continue
        grp, ver, kind = base.rsplit(".", 2)
        grp = "" if grp == "core" else grp
        cands = gvk_index.get((grp, ver, kind), [])
        cands = [c for c in cands if c.startswith(("io.k8s.api.", CRD)) or grp == ""]
        if not cands:
            die("no schema for fixture %s" % base)
        # Prefer the group's own definition (meta kinds are registered in many groups).
        defname = sorted(cands, key=lambda c: (not c.startswith("io.k8s.api."), c))[0]
        with open(os.path.join(fdir, fn)) as f:
            obj = json.load(f, object_pairs_hook=OrderedDict)
        with open(os.path.join(fdir, base + ".pb"), "rb") as f:
            buf = f.read()
        api_version, k, raw = unknown_envelope(buf)
        if k and k != kind:
            die("%s: envelope kind %s" % (base, k))
        al.align(defname, obj, raw)
        fixtures.append((base, defname))

    roots = set(al.seen) | set(facts.types.keys())
    for n, s in schemas.items():
        if n.startswith(("io.k8s.api.", CRD)) and s.get("x-kubernetes-group-version-kind"):
            if any(n.startswith(p) for p in wanted_prefixes()):
                roots.add(n)
    for extra in (META + "APIResourceList", META + "Status", META + "WatchEvent",
                  META + "DeleteOptions", META + "Time", META + "MicroTime"):
        roots.add(extra)
    defs = sorted(reachable(schemas, roots))
    return schemas, paths, al, defs, fixtures


def wanted_prefixes():
    out = []
    for gv in GV_DOCS:
        if gv == "api/v1":
            out.append("io.k8s.api.core.v1.")
            continue
        g, v = gv.split("/")[1:]
        if g == "apiextensions.k8s.io":
            out.append(CRD)
            continue
        short = g.replace(".k8s.io", "").replace(".authorization", "")
        short = {"rbac.authorization": "rbac"}.get(short, short)
        out.append("io.k8s.api.%s.%s." % (short.split(".")[0], v))
    return out


def field_numbers(schemas, al, defname):
    s = schemas[defname]
    nums, problems = {}, []
    fixed = s.get("x-kcp-nums", {})
    for f in s.get("properties", {}):
        if f in fixed:
            nums[f] = fixed[f]
            ev = al.evidence.get((defname, f))
            if ev and set(ev) != {fixed[f]}:
                problems.append("%s.%s: facts say %d, fixtures say %s" % (defname, f, fixed[f],
                                                                        dict(ev)))
            continue
        ev = al.evidence.get((defname, f))
        if not ev:
            if f in ("kind", "apiVersion") and (defname in al.typemeta or is_typemeta(s)):
                continue
            problems.append("%s.%s: no field number (no fixture, no fact)" % (defname, f))
            continue
        if len(ev) > 1:
            problems.append("%s.%s: fixtures disagree %s" % (defname, f, dict(ev)))
        nums[f] = max(ev, key=ev.get)
    return nums, problems


def is_typemeta(s):
    if s.get("x-kcp-typemeta"):
        return True
    props = s.get("properties", {})
    return ("kind" in props and "apiVersion" in props and
            (s.get("x-kubernetes-group-version-kind") or
             ("items" in props and "metadata" in props)))


# ------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------

def ann_value(v):
    return urllib.parse.quote(json.dumps(v, separators=(",", ":"), sort_keys=False), safe="")


def field_annotations(defname, name, p, required, facts, shape):
    a = []
    if name in required:
        a.append("req")
    sh = shape
    if p.get("x-kcp-inline"):
        a.append("inline")
    elif sh[0] == "scalar":
        if "default" in p:
            a.append("val")
        elif (defname, name) in facts.ptr:
            a.append("ptr")
        elif (defname, name) in facts.val:
            a.append("omit")
        else:
            a.append("omit")
    elif sh[0] == "msg":
        sp = SPECIAL.get(sh[1])
        if sp in ("time", "microtime"):
            # Non-pointer times carry default {} in the OpenAPI facts? they do not; facts say.
            a.append("val" if (defname, name) in facts.val else "ptr")
        elif sp in ("quantity", "intorstring"):
            a.append("val" if (defname, name) in facts.val or "default" in p else "ptr")
        elif "default" in p or (defname, name) in facts.val:
            a.append("val")
        else:
            a.append("ptr")
    else:
        a.append("val" if (defname, name) in facts.val or name in required else "omit")
    for k in sorted(p):
        if k.startswith("x-kubernetes-"):
            a.append("%s=%s" % (k, ann_value(p[k])))
    inner = p
    if p.get("type") == "array":
        inner = p.get("items", {})
    if "enum" in inner:
        a.append("enum=" + ann_value(inner["enum"]))
    if "default" in p and p["default"] not in ({}, "", 0, False):
        a.append("default=" + ann_value(p["default"]))
    if "format" in p and p.get("type") == "string" and p["format"] not in ("byte",):
        a.append("format=" + p["format"])
    return a


def proto_type(shape, pkg):
    kind, arg = shape
    if kind == "scalar":
        return arg
    if kind == "msg":
        return arg if package_of(arg) != pkg else arg.rsplit(".", 1)[1]
    return None


def qualify(defname, pkg):
    p = package_of(defname)
    if p == pkg:
        return defname.rsplit(".", 1)[1]
    return proto_package(p) + "." + defname.rsplit(".", 1)[1]


# Annotations that are ours rather than derived from upstream data: admission defaults and checks
# (docs/SCHEMA.md, "Admission"). A run keeps the ones the proto files already carry. A key may
# carry a scope suffix ("setdefault@Pod").
KEEP_FIELD = {"setdefault", "setdefault-from", "setdefault-fn", "if", "unless", "check",
              "check-fn"}
KEEP_MESSAGE = {"default-fn", "name-format"}


def kept_annotations(protodir):
    """((proto package, message, field) -> tokens, (proto package, message) -> tokens)."""
    fields, msgs = {}, {}
    if not os.path.isdir(protodir):
        return fields, msgs

    def ours(tok, keys):
        return tok.partition("=")[0].split("@")[0] in keys
    for fn in sorted(os.listdir(protodir)):
        if not fn.endswith(".proto"):
            continue
        pkg, cur, pending = None, None, []
        with open(os.path.join(protodir, fn)) as f:
            for line in f:
                s = line.strip()
                if s.startswith("package "):
                    pkg = s[len("package "):].rstrip(";")
                elif s.startswith("// @kcp "):
                    pending += [t for t in s[8:].split() if ours(t, KEEP_MESSAGE)]
                elif s.startswith("message "):
                    cur = s.split()[1]
                    if pending:
                        msgs[(pkg, cur)] = pending
                    pending = []
                elif cur and "// @kcp " in s:
                    m = re.search(r"\s(\w+)\s*=\s*\d+;\s*// @kcp (.*)$", s)
                    toks = [t for t in m.group(2).split() if ours(t, KEEP_FIELD)] if m else []
                    if toks:
                        fields[(pkg, cur, m.group(1))] = toks
    return fields, msgs


def emit(schemas, al, defs, facts, outdir, kept=({}, {})):
    files = defaultdict(list)   # pkg -> [text]
    imports = defaultdict(set)
    problems = []
    for d in defs:
        s = schemas[d]
        pkg = package_of(d)
        sp = SPECIAL.get(d)
        lines = []
        desc = facts.desc.get(d, "")
        for dl in wrap(desc):
            lines.append("// " + dl)
        opts = []
        for g in s.get("x-kubernetes-group-version-kind", []):
            opts.append("gvk=%s/%s/%s" % (g["group"], g["version"], g["kind"]))
        if sp:
            opts.append("json=" + sp)
        tm = d in al.typemeta or is_typemeta(s)
        if tm and not sp:
            opts.append("typemeta")
        for k in sorted(s):
            if k.startswith("x-kubernetes-") and k != "x-kubernetes-group-version-kind":
                opts.append("%s=%s" % (k, ann_value(s[k])))
        if "required" in s:
            pass
        if opts:
            lines.append("// @kcp " + " ".join(opts))
        name = d.rsplit(".", 1)[1]
        lines.append("message %s {" % name)
        if sp:
            if sp in SPECIAL_FIELDS:
                for fname, ftype, num in SPECIAL_FIELDS[sp]:
                    lab = "repeated" if ftype.startswith("repeated") else "optional"
                    lines.append("  %s %s %s = %d;" % (lab, ftype.split()[-1], fname, num))
            elif sp == "schemaorarray":
                lines.append("  optional JSONSchemaProps schema = 1;")
                lines.append("  repeated JSONSchemaProps jSONSchemas = 2;")
            elif sp == "schemaorbool":
                lines.append("  optional bool allows = 1;")
                lines.append("  optional JSONSchemaProps schema = 2;")
            elif sp == "schemaorstringarray":
                lines.append("  optional JSONSchemaProps schema = 1;")
                lines.append("  repeated string property = 2;")
            lines.append("}")
            files[pkg].append("\n".join(lines))
            continue
        nums, probs = field_numbers(schemas, al, d)
        problems += probs
        props = s.get("properties", {})
        order = al.order.get(d) or s.get("x-kcp-order") or facts.order.get(d)
        if not order:
            order = sorted(props, key=lambda f: nums.get(f, 1 << 30))
        else:
            order = list(order) + sorted((f for f in props if f not in order),
                                         key=lambda f: nums.get(f, 1 << 30))
        required = set(s.get("required", []))
        for f in order:
            if f not in nums:
                continue
            p = props[f]
            shape = prop_shape(p)
            fd = facts.desc.get((d, f), "")
            for dl in wrap(fd):
                lines.append("  // " + dl)
            ann = field_annotations(d, f, p, required, facts, shape)
            pname = f
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", f) or f in C_KEYWORDS:
                pname = re.sub(r"[^A-Za-z0-9_]", "_", f).lstrip("_")
                pname = pname + "_" if pname in C_KEYWORDS else pname
                if f.startswith("$"):
                    pname = "ref_" if f == "$ref" else "schema_" if f == "$schema" else pname
                ann.insert(0, "json=" + urllib.parse.quote(f, safe=""))
            kind, arg = shape
            if kind == "scalar":
                if arg == "unknown":
                    problems.append("%s.%s: untyped property" % (d, f))
                    continue
                decl = "optional %s %s = %d;" % (arg, pname, nums[f])
            elif kind == "msg":
                decl = "optional %s %s = %d;" % (qualify(arg, pkg), pname, nums[f])
                if package_of(arg) != pkg:
                    imports[pkg].add(package_of(arg))
            elif kind == "list":
                ik, ia = arg
                if ik == "scalar":
                    decl = "repeated %s %s = %d;" % (ia, pname, nums[f])
                elif ik == "msg":
                    decl = "repeated %s %s = %d;" % (qualify(ia, pkg), pname, nums[f])
                    if package_of(ia) != pkg:
                        imports[pkg].add(package_of(ia))
                else:
                    problems.append("%s.%s: list of %s needs a wrapper type" % (d, f, ik))
                    continue
            else:
                ik, ia = arg
                if ik == "scalar":
                    decl = "map<string, %s> %s = %d;" % (ia, pname, nums[f])
                elif ik == "msg":
                    decl = "map<string, %s> %s = %d;" % (qualify(ia, pkg), pname, nums[f])
                    if package_of(ia) != pkg:
                        imports[pkg].add(package_of(ia))
                else:
                    problems.append("%s.%s: map of %s needs a wrapper type" % (d, f, ik))
                    continue
            ann += kept[0].get((proto_package(pkg), name, pname), [])
            lines.append("  %s // @kcp %s" % (decl, " ".join(ann)))
        if required:
            lines.insert(len(lines) - len(order) if False else lines.index("message %s {" % name),
                         "// @kcp required=" + ",".join(sorted(required)))
        if (proto_package(pkg), name) in kept[1]:
            lines.insert(lines.index("message %s {" % name),
                         "// @kcp " + " ".join(kept[1][(proto_package(pkg), name)]))
        lines.append("}")
        files[pkg].append("\n".join(lines))
    for (d, k), left in sorted(al.unmatched.items()):
        problems.append("%s.%s: fixture key matched no pb field (unused pb fields %s)" % (d, k, left))
    if problems:
        die("unresolved:\n  " + "\n  ".join(sorted(set(problems))))
    written = []
    for pkg in sorted(files):
        fn = file_of(pkg)
        out = ["// %s: Kubernetes API types of package %s for kcp." % (fn, pkg),
               "// Generated by tools/schema/extract.py from upstream API facts; see docs/SCHEMA.md.",
               "// Field order is the JSON (Go struct) order; numbers are upstream's wire numbers.",
               'syntax = "proto2";', "",
               "package %s;" % proto_package(pkg), ""]
        for imp in sorted(imports[pkg]):
            out.append('import "%s";' % file_of(imp))
        if imports[pkg]:
            out.append("")
        out.append("\n\n".join(files[pkg]))
        text = "\n".join(out) + "\n"
        with open(os.path.join(outdir, fn), "w") as f:
            f.write(text)
        written.append(fn)
    return written


def wrap(text, width=96):
    if not text:
        return []
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = (cur + " " + w).strip()
    if cur:
        lines.append(cur)
    return lines


# ------------------------------------------------------------------------------------------
# Resources (from the OpenAPI paths)
# ------------------------------------------------------------------------------------------

ACTION_VERB = {"get": "get", "list": "list", "watch": "watch", "watchlist": "watch",
               "post": "create", "put": "update", "patch": "patch", "delete": "delete",
               "deletecollection": "deletecollection", "connect": None}
VERB_ORDER = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def resources(paths, schemas, facts):
    rows = OrderedDict()
    subs = defaultdict(list)
    for gv, ps in paths.items():
        prefix = "/" + gv + "/"
        group = "" if gv == "api/v1" else gv.split("/")[1]
        version = gv.rsplit("/", 1)[1]
        for path, item in ps.items():
            rest = path[len(prefix):] if path.startswith(prefix) else None
            if not rest:
                continue
            parts = rest.split("/")
            if parts[0] == "watch":
                parts = parts[1:]
            namespaced = False
            if parts[:2] == ["namespaces", "{namespace}"] and len(parts) > 2:
                namespaced = True
                parts = parts[2:]
            res = parts[0]
            sub = None
            if len(parts) >= 3 and parts[1] == "{name}":
                sub = parts[2]
                if len(parts) > 3:
                    continue   # proxy/{path}
            for m, op in item.items():
                if not isinstance(op, dict) or "x-kubernetes-action" not in op:
                    continue
                verb = ACTION_VERB[op["x-kubernetes-action"]]
                gvk = op.get("x-kubernetes-group-version-kind", {})
                if sub:
                    key = (group, version, res, sub)
                    e = next((x for x in subs[(group, version, res)] if x["name"] == sub), None)
                    if e is None:
                        e = {"name": sub, "verbs": set(), "gvk": gvk}
                        subs[(group, version, res)].append(e)
                    e["verbs"].add(verb or {"get": "get", "post": "create"}.get(m, m))
                    if op["x-kubernetes-action"] == "connect":
                        e["verbs"].add("connect:" + m)
                    continue
                key = (group, version, res)
                r = rows.setdefault(key, {"kind": gvk.get("kind"), "verbs": set(),
                                          "namespaced": False})
                if res == "namespaces" and parts[0] == "namespaces" and not namespaced:
                    pass
                r["namespaced"] = r["namespaced"] or namespaced
                if verb:
                    r["verbs"].add(verb)
                if not r["kind"]:
                    r["kind"] = gvk.get("kind")
    out = []
    for (g, v, res), r in rows.items():
        sn, cats = facts.short.get("%s/%s" % (g or "core", res), ([], []))
        sublist = []
        for e in sorted(subs.get((g, v, res), []), key=lambda e: e["name"]):
            verbs = sorted(x for x in e["verbs"] if not x.startswith("connect:"))
            sk = e["gvk"]
            sublist.append("%s:%s/%s/%s:%s" % (e["name"], sk.get("group", ""), sk.get("version", ""),
                                               sk.get("kind", ""), "+".join(verbs)))
        verbs = [x for x in VERB_ORDER if x in r["verbs"]]
        out.append([g or "core", v, r["kind"], res, r["kind"].lower(),
                    "true" if r["namespaced"] else "false", ",".join(verbs) or "-",
                    ",".join(sn) or "-", ",".join(cats) or "-", " ".join(sublist) or "-"])
    out.sort(key=lambda x: (GROUP_ORDER.index(x[0]) if x[0] in GROUP_ORDER else 99, x[1], x[3]))
    return out


GROUP_ORDER = ["core", "apps", "batch", "autoscaling", "coordination.k8s.io",
               "discovery.k8s.io", "events.k8s.io", "networking.k8s.io", "policy",
               "rbac.authorization.k8s.io", "scheduling.k8s.io", "storage.k8s.io",
               "apiextensions.k8s.io", "authentication.k8s.io", "authorization.k8s.io"]


def main(argv):
    check = "--check" in argv
    args = [a for a in argv[1:] if not a.startswith("--")]
    if not args:
        die("usage: extract.py [--check] K8S_REF_DIR [PROTO_DIR]")
    ref = args[0]
    outdir = args[1] if len(args) > 1 else os.path.join(HERE, "..", "..", "proto")
    facts = Facts(os.path.join(HERE, "facts.txt"))
    schemas, paths, al, defs, fixtures = build(ref, facts)
    kept = kept_annotations(outdir)
    if check:
        outdir = os.path.join("/tmp", "kcp-extract-check")
    os.makedirs(outdir, exist_ok=True)
    written = emit(schemas, al, defs, facts, outdir, kept)
    rows = resources(paths, schemas, facts)
    with open(os.path.join(outdir, "resources.tsv"), "w") as f:
        f.write("# resources.tsv: kcp's REST resources (generated by tools/schema/extract.py from "
                "upstream facts).\n")
        f.write("# group\tversion\tkind\tresource\tsingular\tnamespaced\tverbs\tshortNames\t"
                "categories\tsubresources (name:group/version/kind:verbs)\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    amb = sorted("%s.%s" % k for k in al.ambig)
    sys.stderr.write("extract: %d types in %d files, %d fixtures aligned, %d resources, "
                     "%d fields numbered by order among equal candidates\n"
                     % (len(defs), len(written), len(fixtures), len(rows), len(amb)))
    if os.environ.get("KCP_EXTRACT_VERBOSE"):
        for a in amb:
            sys.stderr.write("  order-resolved: %s\n" % a)


if __name__ == "__main__":
    main(sys.argv)
