#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets to fuzz/seeds/<target>/ (not kept in git: the
fuzzer merges them into fuzz/corpus/). Sources: the repository's processes, the Camunda Modeler
fixtures, the DMN TCK models under 40 KB, and the FEEL text found in all of them."""
import glob, hashlib, html, os, re

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(here)
shared = os.path.join(os.path.dirname(repo), "shared", "fixtures")


def put(target, data):
    d = os.path.join(here, "seeds", target)
    os.makedirs(d, exist_ok=True)
    data = data.encode() if isinstance(data, str) else data
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


bpmns = (glob.glob(f"{repo}/processes/*.bpmn") + glob.glob(f"{shared}/bpmn-modeler/*.bpmn")
         + glob.glob(f"{repo}/crates/**/*.bpmn", recursive=True))
feel = set()
for path in bpmns:
    xml = open(path, encoding="utf-8").read()
    put("bpmn_read", xml)
    feel.update(html.unescape(m.group(1)) for m in re.finditer(r'="(=[^"]*)"', xml))
    feel.update(html.unescape(m.group(1))
                for m in re.finditer(r"<bpmn:conditionExpression[^>]*>([^<]*)<", xml))
# FEEL in the workflow crate's sources and tests ("=..." string literals).
for path in glob.glob(f"{repo}/crates/workflow/**/*.rs", recursive=True):
    for m in re.finditer(r'"(=(?:[^"\\]|\\.)*)"', open(path, encoding="utf-8").read()):
        text = m.group(1).encode().decode("unicode_escape", errors="ignore")
        if len(text) < 300:
            feel.add(text)
for text in feel:
    put("feel_parse_eval", text)

dmn_feel = set()
for path in sorted(glob.glob(f"{shared}/dmn-tck/**/*.dmn", recursive=True)):
    data = open(path, "rb").read()
    if len(data) < 40_000:
        put("dmn_parse", data)
    for m in re.finditer(r"<(?:\w+:)?text>([^<]*)</(?:\w+:)?text>", data.decode("utf-8")):
        text = html.unescape(m.group(1)).strip()
        if 0 < len(text) < 400:
            dmn_feel.add(text)
for text in dmn_feel:
    put("dmn_feel", text)
# The workflow's FEEL is now the full language too: DMN's FEEL text, with Zeebe's `=` prefix.
for text in dmn_feel:
    put("feel_parse_eval", "=" + text)
print({t: len(os.listdir(os.path.join(here, "seeds", t))) for t in os.listdir(os.path.join(here, "seeds"))})
