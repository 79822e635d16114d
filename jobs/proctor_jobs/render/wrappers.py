"""Pages Proctor builds around answers that are not a complete HTML document.

SVG-only answers and HTML fragments get a minimal document; single-file React (JSX/TSX) and Vue
SFC answers get the framework, an in-browser transpiler (Babel standalone) and a mount point. All
libraries are referenced by their public CDN URLs: the hermetic network layer answers those from
the local library cache, exactly as it answers the same URLs written by a model, so a wrapped
page renders with no network at all.

The transformations are deliberately simple and visible (the generated page is stored as the
item's `html` evidence): imports become globals or stubs, `export` keywords are dropped, and the
component the answer exports (or `App`) is mounted unless the answer mounts itself.
"""

from __future__ import annotations

import json
import re

REACT_URL = "https://unpkg.com/react@18.3.1/umd/react.production.min.js"
REACT_DOM_URL = "https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js"
BABEL_URL = "https://unpkg.com/@babel/standalone@7/babel.min.js"
VUE_URL = "https://unpkg.com/vue@3/dist/vue.global.prod.js"
TAILWIND_URL = "https://cdn.tailwindcss.com"

_HEAD = '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'


def svg_page(svg: str) -> str:
    """An SVG element as the whole page, on white, unscaled — what a viewer opening the SVG sees."""
    return (
        f"<!DOCTYPE html>\n<html><head>{_HEAD}<style>html,body{{margin:0;padding:0;background:#fff}}"
        f"</style></head>\n<body>\n{svg}\n</body></html>\n"
    )


def fragment_page(fragment: str) -> str:
    return f"<!DOCTYPE html>\n<html><head>{_HEAD}</head>\n<body>\n{fragment}\n</body></html>\n"


def script_page(script: str, css: list[str]) -> str:
    styles = "".join(f"<style>\n{c}\n</style>\n" for c in css)
    return (
        f"<!DOCTYPE html>\n<html><head>{_HEAD}{styles}</head>\n<body>\n"
        f'<div id="app"></div><div id="root"></div>\n<script>\n{_escape_script(script)}\n</script>\n'
        "</body></html>\n"
    )


def insert_before(page: str, tag: str, content: str, at_start: bool) -> str:
    """Insert before the first `tag` (case-insensitive); without it, at the start or the end."""
    match = re.search(re.escape(tag), page, re.IGNORECASE)
    if match:
        return page[: match.start()] + content + page[match.start() :]
    return content + page if at_start else page + content


def _escape_script(code: str) -> str:
    """Code placed inside <script> must not close the element early."""
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)


# A tiny loader shared by the wrapped pages: transpile with Babel, then run as a classic script so
# errors surface as ordinary page errors (counted in the record) and on the page itself.
_LOADER = r"""
window.__proctorStub = function (name) {
  var Comp = function (props) {
    var R = window.React;
    return R ? R.createElement('div', {'data-proctor-stub': name}, props && props.children) : null;
  };
  return new Proxy(Comp, {get: function (t, k) {
    if (k === '__esModule') return true;
    if (k === 'default') return Comp;
    if (typeof k === 'string' && /^use[A-Z]/.test(k)) return function () { return {}; };
    return Comp;
  }});
};
window.__proctorRun = function (source, presets) {
  try {
    var out = Babel.transform(source, {presets: presets, filename: 'answer.tsx',
                                       sourceType: 'script'}).code;
    var s = document.createElement('script');
    s.textContent = out;
    document.body.appendChild(s);
  } catch (e) {
    var pre = document.createElement('pre');
    pre.style.cssText = 'color:#b00;white-space:pre-wrap;font:13px monospace;padding:12px';
    pre.textContent = 'Proctor could not transpile this answer: ' + e.message;
    document.body.appendChild(pre);
    throw e;
  }
};
"""

_IMPORT = re.compile(
    r"^[ \t]*import\s+(?:type\s+)?(?P<clause>[\w$*{}\s,]+?)\s+"
    r"from\s+(?P<q>['\"])(?P<mod>[^'\"]+)(?P=q)\s*;?[ \t]*$"
    r"|^[ \t]*import\s+(?P<q2>['\"])(?P<side>[^'\"]+)(?P=q2)\s*;?[ \t]*$",
    re.MULTILINE,
)


def _import_bindings(clause: str, source: str) -> str:
    """`import A, {b as c} from 'm'` -> JS statements binding A and c from `source` (an expression)."""
    clause = clause.strip()
    statements = []
    named = re.search(r"\{([^}]*)\}", clause)
    head = clause[: named.start()] if named else clause
    for part in [p.strip() for p in head.split(",") if p.strip()]:
        name = part.split()[-1]
        if name == source:  # `import React from 'react'` with React already global
            continue
        if part.startswith("*"):
            statements.append(f"const {name} = {source};")
        else:
            statements.append(f"const {name} = ({source}).default || {source};")
    if named:
        pairs = []
        for item in [i.strip() for i in named.group(1).split(",") if i.strip()]:
            item = re.sub(r"^type\s+", "", item)
            if " as " in item:
                original, alias = (x.strip() for x in item.split(" as ", 1))
                pairs.append(f"{original}: {alias}")
            else:
                pairs.append(item)
        if pairs:
            statements.append(f"const {{ {', '.join(pairs)} }} = {source};")
    return " ".join(statements)


def _rewrite_imports(code: str, globals_for: dict[str, str], notes: list[str]) -> str:
    stubbed: list[str] = []

    def replace(match: re.Match) -> str:
        if match.group("side"):
            return f"/* proctor: dropped side-effect import {match.group('side')!r} */"
        module, clause = match.group("mod"), match.group("clause")
        if re.match(r"^type\s", match.group(0).strip()[len("import") :].strip()):
            return ""
        for prefix, expression in globals_for.items():
            if module == prefix or module.startswith(prefix + "/"):
                return _import_bindings(clause, expression)
        if module.endswith((".css", ".scss", ".less")):
            return _import_bindings(clause, "new Proxy({}, {get: (t, k) => String(k)})")
        stubbed.append(module)
        return _import_bindings(clause, f"__proctorStub({json.dumps(module)})")

    out = _IMPORT.sub(replace, code)
    if stubbed:
        notes.append(
            "imports with no browser build were replaced by empty stubs: " + ", ".join(sorted(set(stubbed)))
        )
    return out


_TAILWINDISH = re.compile(
    r"\b(?:flex|grid|items-center|justify-\w+|p[xytrbl]?-\d+|m[xytrbl]?-\d+|text-(?:xs|sm|lg|\d?xl|center)|"
    r"bg-\w+-\d{2,3}|rounded(?:-\w+)?|shadow(?:-\w+)?|w-\d+|h-\d+|gap-\d+)\b"
)


def _uses_tailwind(code: str) -> bool:
    classes = " ".join(re.findall(r"class(?:Name)?\s*=\s*[\"'{`]([^\"'`}]*)", code))
    return len(set(_TAILWINDISH.findall(classes))) >= 4


def react_page(code: str, extra_css: list[str], typescript: bool) -> tuple[str, list[str]]:
    """A single React component file mounted on a page with React 18, ReactDOM and Babel."""
    flavour = " (TypeScript)" if typescript else ""
    notes = [f"wrapped the React component with React 18 and Babel standalone{flavour}"]
    source = _rewrite_imports(code, {"react-dom": "ReactDOM", "react": "React"}, notes)
    default_name = None
    match = re.search(r"export\s+default\s+(?:async\s+)?(?:function|class)\s+([A-Za-z_$][\w$]*)", source)
    if match:
        default_name = match.group(1)
    source = re.sub(r"export\s+default\s+((?:async\s+)?(?:function|class)\b)", r"\1", source)
    match = re.search(r"^\s*export\s+default\s+([A-Za-z_$][\w$]*)\s*;?\s*$", source, re.MULTILINE)
    if match:
        default_name = default_name or match.group(1)
        source = source[: match.start()] + source[match.end() :]
    if re.search(r"export\s+default\s+", source):  # export default <expression>
        source = re.sub(r"export\s+default\s+", "const __ProctorDefault = ", source, count=1)
        default_name = default_name or "__ProctorDefault"
    source = re.sub(
        r"^(\s*)export\s+(?=(?:const|let|var|function|class|async)\b)", r"\1", source, flags=re.MULTILINE
    )
    source = re.sub(r"^\s*export\s*\{[^}]*\}\s*;?\s*$", "", source, flags=re.MULTILINE)
    mounts_itself = bool(re.search(r"createRoot\s*\(|ReactDOM\.render\s*\(|\brender\s*\(\s*<", source))
    if not mounts_itself:
        name = default_name or _component_name(source)
        if name is None:
            notes.append("found no component to mount")
        else:
            source += (
                f"\n\n;ReactDOM.createRoot(document.getElementById('root'))"
                f".render(React.createElement({name}));\n"
            )
            notes.append(f"mounted <{name}/> on #root")
    tailwind = _uses_tailwind(code)
    if tailwind:
        notes.append("the classes look like Tailwind: added Tailwind's browser build")
    presets = '[["typescript", {"allExtensions": true, "isTSX": true}], "react"]'
    page = _framework_page(
        scripts=[REACT_URL, REACT_DOM_URL, BABEL_URL] + ([TAILWIND_URL] if tailwind else []),
        css=extra_css,
        body='<div id="root"></div><div id="app"></div>',
        run=f"__proctorRun({json.dumps(source)}, {presets});",
    )
    return page, notes


def _component_name(source: str) -> str | None:
    if re.search(r"\b(?:function|const|let|class)\s+App\b", source):
        return "App"
    names = re.findall(r"^(?:function|const|let|class)\s+([A-Z][\w$]*)", source, re.MULTILINE)
    return names[-1] if names else None


def _framework_page(scripts: list[str], css: list[str], body: str, run: str) -> str:
    tags = "".join(f'<script src="{url}"></script>\n' for url in scripts)
    styles = "".join(f"<style>\n{c}\n</style>\n" for c in css)
    return (
        f"<!DOCTYPE html>\n<html><head>{_HEAD}\n{tags}{styles}</head>\n<body>\n{body}\n"
        f"<script>{_LOADER}</script>\n<script>\n{_escape_script(run)}\n</script>\n</body></html>\n"
    )


def _sfc_section(code: str, tag: str) -> list[tuple[str, str]]:
    """(attributes, content) of each top-level <tag>…</tag> section of a Vue SFC."""
    if tag == "template":  # templates nest <template> tags: take the outermost span
        start = re.search(r"<template(\b[^>]*)>", code)
        end = code.rfind("</template>")
        if not start or end < start.end():
            return []
        return [(start.group(1), code[start.end() : end])]
    return [(m.group(1), m.group(2)) for m in re.finditer(rf"<{tag}(\b[^>]*)>(.*?)</{tag}>", code, re.DOTALL)]


def vue_page(code: str, extra_css: list[str]) -> tuple[str, list[str]]:
    """A Vue single-file component compiled in the browser by Vue 3's full build (with compiler)."""
    notes = ["wrapped the Vue single-file component with Vue 3 (runtime template compiler)"]
    templates = _sfc_section(code, "template")
    scripts = _sfc_section(code, "script")
    styles = [content for _, content in _sfc_section(code, "style")]
    if not templates:
        notes.append("the component has no <template>; rendered an empty root")
    template = templates[0][1] if templates else "<div></div>"
    setup = next((content for attrs, content in scripts if "setup" in attrs), None)
    plain = next((content for attrs, content in scripts if "setup" not in attrs), None)
    stub_globals = {"vue": "Vue"}
    if setup is not None:
        body = _rewrite_imports(setup, stub_globals, notes)
        bindings = _top_level_bindings(body)
        body = re.sub(r"^\s*export\s+", "", body, flags=re.MULTILINE)
        component = (
            "const __sfc = {\n  template: " + json.dumps(template) + ",\n"
            "  props: " + _props_guess(setup) + ",\n"
            "  setup(__props, __ctx) {\n"
            "    const defineProps = () => __props; const withDefaults = (p) => p;\n"
            "    const defineEmits = () => __ctx.emit; const defineExpose = () => {};\n"
            "    const defineModel = () => Vue.ref(undefined); const defineOptions = () => {};\n"
            f"{body}\n    return {{ {', '.join(bindings)} }};\n  }}\n}};\n"
        )
        if plain:
            notes.append("ignored a second, non-setup <script> block")
    elif plain is not None:
        body = _rewrite_imports(plain, stub_globals, notes)
        body = re.sub(r"export\s+default\s+", "const __sfc = ", body, count=1)
        if "__sfc" not in body:
            body += "\nconst __sfc = {};"
        component = body + f"\n__sfc.template = {json.dumps(template)};\n"
    else:
        component = f"const __sfc = {{ template: {json.dumps(template)} }};\n"
    if re.search(r"<script[^>]*lang=[\"']ts", code):
        notes.append('transpiled <script lang="ts"> with Babel')
    component += (
        "const __app = Vue.createApp(__sfc);\n"
        "__app.config.errorHandler = (e) => { console.error(e); };\n"
        "__app.mount('#app');\n"
    )
    tailwind = _uses_tailwind(code)
    if tailwind:
        notes.append("the classes look like Tailwind: added Tailwind's browser build")
    if any("scoped" in attrs for attrs, _ in _sfc_section(code, "style")):
        notes.append("<style scoped> applied globally")
    page = _framework_page(
        scripts=[VUE_URL, BABEL_URL] + ([TAILWIND_URL] if tailwind else []),
        css=styles + extra_css,
        body='<div id="app"></div>',
        run=f'__proctorRun({json.dumps(component)}, [["typescript", {{"allExtensions": true}}]]);',
    )
    return page, notes


def _props_guess(setup: str) -> str:
    match = re.search(r"defineProps\s*(?:<[^>]*>)?\s*\(\s*(\[[^\]]*\]|\{)", setup)
    if match and match.group(1).startswith("["):
        return match.group(1)
    names = re.findall(r"defineProps\s*<\s*\{([^}]*)\}", setup)
    if names:
        keys = re.findall(r"([A-Za-z_$][\w$]*)\??\s*:", names[0])
        return json.dumps(keys)
    return "[]"


def _top_level_bindings(source: str) -> list[str]:
    """Names a <script setup> exposes to its template: its top-level declarations and imports."""
    names: list[str] = []
    depth = 0
    for line in source.split("\n"):
        if depth == 0:
            stripped = line.strip()
            m = re.match(r"(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)", stripped)
            if m:
                names.append(m.group(1))
            m = re.match(r"(?:export\s+)?(?:const|let|var)\s*\{([^}]*)\}\s*=", stripped)
            if m:
                for part in m.group(1).split(","):
                    part = part.split("=")[0].strip()
                    if part:
                        names.append(part.split(":")[-1].strip())
            m = re.match(r"(?:export\s+)?(?:async\s+)?(?:function\*?|class)\s+([A-Za-z_$][\w$]*)", stripped)
            if m:
                names.append(m.group(1))
        depth += (
            line.count("{")
            + line.count("(")
            + line.count("[")
            - line.count("}")
            - line.count(")")
            - line.count("]")
        )
        depth = max(depth, 0)
    seen: list[str] = []
    for name in names:
        if re.fullmatch(r"[A-Za-z_$][\w$]*", name) and name not in seen and name != "props":
            seen.append(name)
    return seen


def script_tag(code: str, attrs: str, language: str, notes: list[str]) -> str:
    """A <script> element for a JavaScript block; JSX/TypeScript blocks are transpiled first."""
    if language in ("javascript", "js", "mjs", "cjs", "ecmascript"):
        attrs = f" {attrs}" if attrs else ""
        return f"<script{attrs}>\n{_escape_script(code)}\n</script>"
    notes.append(f"transpiled a ```{language} block with Babel standalone")
    presets = '[["typescript", {"allExtensions": true, "isTSX": true}], "react"]'
    return (
        f'<script src="{BABEL_URL}"></script><script>{_LOADER}</script>'
        f"<script>__proctorRun({_escape_script(json.dumps(code))}, {presets});</script>"
    )
