"""ArtifactsBench extraction: the faithful profile does what the original harness does (mistakes
included), the fixed profile corrects it and says so in the record."""

from __future__ import annotations

import re

import pytest

from proctor_jobs.render.extract import extract, fenced_blocks

MULTI_FILE = """Here is the app.

```html
<!DOCTYPE html>
<html><head><link rel="stylesheet" href="style.css"></head>
<body><div id="app"></div><script src="app.js"></script></body></html>
```

style.css
```css
body { color: red; }
```

app.js
```javascript
document.getElementById('app').textContent = 'hi';
```
"""


def test_faithful_takes_the_text_after_the_last_think_and_inlines_named_blocks():
    answer = "<think>draft ```html <html></html>```</think>\n" + MULTI_FILE
    result = extract(answer, "faithful")
    assert result.kind == "html"
    assert "<style>body { color: red; }\n</style>" in result.html
    assert "<script>document.getElementById('app').textContent = 'hi';\n</script>" in result.html
    assert 'href="style.css"' not in result.html and 'src="app.js"' not in result.html
    assert result.corrections == []


def test_faithful_drops_unreferenced_blocks_leaving_the_originals_placeholder():
    answer = (
        "```html\n<html><head></head><body><p>x</p></body></html>\n```\n"
        "```css\np { color: blue }\n```\n```javascript\nconsole.log(1)\n```\n"
    )
    faithful = extract(answer, "faithful")
    assert "<style>/* styles.css not found in result */</style>\n</head>" in faithful.html
    assert "<script>/* script.js not found in result */</script>\n</body>" in faithful.html
    assert "color: blue" not in faithful.html  # the original loses the CSS
    fixed = extract(answer, "fixed")
    assert "p { color: blue }" in fixed.html and "console.log(1)" in fixed.html
    assert any("unreferenced CSS" in c for c in fixed.corrections)


def test_faithful_uses_the_first_html_block_and_the_fixed_profile_the_last_full_document():
    answer = (
        'Toolbar first:\n```html\n<div class="bar">B</div>\n```\nFull page:\n'
        "```html\n<!DOCTYPE html>\n<html><body><h1>Editor</h1></body></html>\n```\n"
    )
    assert extract(answer, "faithful").html.startswith('<div class="bar">')
    fixed = extract(answer, "fixed")
    assert "<h1>Editor</h1>" in fixed.html
    assert any("last complete HTML document" in c for c in fixed.corrections)


def test_faithful_falls_back_to_the_raw_html_element_when_there_is_no_html_block():
    answer = "Sure: <html><body><p>inline</p></body></html> and that's it."
    result = extract(answer, "faithful")
    assert result.kind == "html"
    assert result.html == "<html><body><p>inline</p></body></html>"
    assert "block assembly failed" in result.reason


def test_faithful_is_case_sensitive_and_the_fixed_profile_is_not():
    answer = "```HTML\n<!DOCTYPE HTML>\n<HTML><BODY><H1>Calc</H1></BODY></HTML>\n```"
    faithful = extract(answer, "faithful")
    assert faithful.kind == "none" and faithful.html is None
    fixed = extract(answer, "fixed")
    assert fixed.kind == "html" and "<H1>Calc</H1>" in fixed.html
    assert any("original renders nothing" in c for c in fixed.corrections)


def test_svg_only_answers_render_as_inline_svg_in_both_profiles():
    answer = "```svg\n<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'><rect/></svg>\n```"
    for profile in ("faithful", "fixed"):
        result = extract(answer, profile)
        assert result.kind == "svg"
        assert re.search(r"<body>\s*<svg", result.html)


def test_js_fences_are_ignored_by_the_original_and_inlined_by_the_fixed_profile():
    answer = (
        '```html\n<!DOCTYPE html><html><body><script src="main.js"></script></body></html>\n```\n'
        "main.js\n```js\ndocument.body.dataset.ok = 'yes';\n```\n"
    )
    assert 'src="main.js"' in extract(answer, "faithful").html
    fixed = extract(answer, "fixed")
    assert "dataset.ok = 'yes'" in fixed.html and 'src="main.js"' not in fixed.html
    assert any("```js" in c for c in fixed.corrections)


def test_a_single_file_react_component_is_wrapped_and_mounted():
    answer = (
        "```jsx\nimport React, { useState } from 'react';\nimport { motion } from 'framer-motion';\n"
        "export default function Counter() {\n  const [n, setN] = useState(0);\n"
        "  return <button onClick={() => setN(n + 1)}>{n}</button>;\n}\n```"
    )
    assert extract(answer, "faithful").kind == "none"
    fixed = extract(answer, "fixed")
    assert fixed.kind == "react"
    assert "https://unpkg.com/react@18.3.1/umd/react.production.min.js" in fixed.html
    assert "@babel/standalone" in fixed.html
    assert "React.createElement(Counter)" in fixed.html
    assert "const React = " not in fixed.html  # React is a global; rebinding it would throw
    assert any("framer-motion" in c for c in fixed.corrections)


def test_a_vue_single_file_component_exposes_its_setup_bindings_to_the_template():
    answer = (
        '```vue\n<template><ul><li v-for="x in items">{{ x }}</li></ul><p>{{ total }}</p></template>\n'
        "<script setup>\nimport { ref, computed } from 'vue'\nconst items = ref([1, 2])\n"
        "const total = computed(() => items.value.length)\n"
        "function add() { items.value.push(3) }\n</script>\n```"
    )
    result = extract(answer, "fixed")
    assert result.kind == "vue"
    assert "vue@3/dist/vue.global.prod.js" in result.html
    assert re.search(r"return \{ ref, computed, items, total, add \}", result.html.replace("\\n", "\n"))


def test_an_html_fragment_is_placed_in_a_minimal_document():
    result = extract('```html\n<div id="x">frag</div>\n```', "fixed")
    assert result.kind == "html"
    assert result.html.startswith("<!DOCTYPE html>") and '<div id="x">frag</div>' in result.html


def test_a_truncated_answer_keeps_its_unterminated_block():
    result = extract("```html\n<!DOCTYPE html>\n<html><body><h1>cut</h1>", "fixed")
    assert result.kind == "html" and "<h1>cut</h1>" in result.html
    assert any("not closed" in c for c in result.corrections)


@pytest.mark.parametrize("profile", ["faithful", "fixed"])
def test_an_answer_with_nothing_renderable_says_why(profile):
    result = extract("Install it with:\n```bash\nnpm i tailwindcss\n```\nthen run vite.", profile)
    assert result.kind == "none" and result.html is None
    assert result.reason
    assert extract("", profile).reason.startswith("empty answer")


def test_the_same_page_extracts_to_the_same_bytes_under_both_profiles():
    answer = "```html\n<!DOCTYPE html>\n<html><body><p>same</p></body></html>\n```\n"
    assert extract(answer, "faithful").html == extract(answer, "fixed").html


def test_fence_parser_reads_info_strings_and_tildes():
    blocks = fenced_blocks('```html title="index.html"\n<p/>\n```\n~~~css\na{}\n~~~\n')
    assert [(b.language, b.name) for b in blocks] == [("html", "index.html"), ("css", None)]


def test_record_shape_matches_the_judge_contract():
    record = extract(MULTI_FILE, "fixed").to_record()
    assert set(record) == {"kind", "profile", "reason", "corrections"}
    assert record["kind"] in ("html", "svg", "react", "vue", "none")


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown extraction profile"):
        extract("x", "lenient")
