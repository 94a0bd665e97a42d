"""Compose MiniWoB base tasks into one compositional task page, CompWoB style.

``generate(["click-button", "enter-text", "login-user"], out)`` writes
``out/click-button_enter-text_login-user.html``, a page that:

- shows every base task's UI at once, one section (``div.wob-sub``) per task, in order;
- joins the base instructions with ", and then" (``reverse=True``: the later subtasks
  first and the first one last, "..., after clicking on ...", as CompWoB's ``-reverse``
  pages do; the order of execution stays the same);
- ends the episode with +1 only when every subtask succeeded in order, and with -1 as soon
  as a subtask fails or succeeds before an earlier one (so a missing subtask fails too).

How a base task is embedded (the code is generic: no per-task edits). The page loads the
union of the base pages' scripts and stylesheets. Each base page's inline script runs
inside its own function, whose ``document``, ``window``, ``d3``, ``$``/``jQuery`` and
``core`` are scoped stand-ins: a selector (``d3.select('#subbtn')``,
``document.getElementById('tt')``, ``$('#area')``, also jQuery's ``.appendTo('#area')``)
finds the task's own elements: those in its section and those it appended to ``body``
(elements that appear under ``body`` while a task's code runs, or after a mouse press or
key in its section, are marked ``data-wob-sub`` as its own, so the observation shows them
in its part), else only elements that belong to no section. Two tasks that both use
``#subbtn``, ``#area`` or a jQuery UI dialog do not collide; a dialog stays inside its
section. Sections are positioned (a task's absolutely placed buttons stay in it, and its
height is fitted to them after each ``genProblem``), earlier ones drawn above later ones
(a popup that overflows is not hidden). ``core.endEpisode`` of a base task reports to the
composer instead of ending the episode; ``window.onload`` is captured and run at load.
Each base task's CSS is scoped to its section. The real ``core`` runs the episode, so a
composed page is driven exactly like a MiniWoB page (``Math.seedrandom``,
``core.startEpisodeReal()``, ``WOB_*`` globals), and it loads ``../core/*`` and
``../common/*``: it must sit in a folder beside MiniWoB's ``core/`` (the CompWoB layout;
:class:`toolpath.tools.web.browser.TaskSite` arranges that).

A subtask succeeds when its base task would have ended with a positive reward (MiniWoB's
success rule); once a subtask has an outcome, later events of that subtask are ignored.
``WOB_COMPOSE.outcomes()`` is each subtask's outcome (its reward, or null), and
``WOB_COMPOSE.report()`` adds the order the subtasks ended in and the first action on a
later subtask's part while an earlier one was not done (:mod:`toolpath.evals.web.failures`).
"""

from __future__ import annotations

import difflib
import html
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from toolpath.errors import ConfigError

COMPOSABLE = (
    "choose-date-easy", "choose-list", "click-button", "click-button-sequence",
    "click-checkboxes", "click-checkboxes-large", "click-collapsible", "click-collapsible-2",
    "click-dialog", "click-dialog-2", "click-link", "click-option", "click-tab",
    "click-tab-2-medium", "click-test", "click-test-2", "click-widget", "enter-password",
    "enter-text", "enter-text-2", "find-word", "focus-text", "focus-text-2", "form-sequence-2",
    "guess-number", "login-user", "login-user-popup", "multi-layouts", "navigate-tree",
    "odd-or-even", "phone-book", "read-table", "read-table-2", "search-engine",
    "simple-arithmetic", "text-transform", "unicode-test", "use-autocomplete", "use-spinner",
)  # fmt: skip
"""Base tasks whose compositions the tests check end to end (the benchmark suite's base
tasks, :mod:`toolpath.evals.web.suite`); others may work too."""

PAGE_IDS = ("#sync-task-cover", "#reward-display", "#click-canvas", "#attention-canvas")
D3V3, D3V4 = "../core/d3.v3.min.js", "../core/d3.v4.min.js"

VERBS = {
    "drag": "dragging",
    "submit": "submitting",
    "set": "setting",
    "put": "putting",
    "get": "getting",
    "hit": "hitting",
    "log": "logging",
    "go": "going",
}
"""Gerunds the simple rule gets wrong (the rule: drop a final e, then add "ing")."""


@dataclass(frozen=True)
class BasePage:
    """The parts of a MiniWoB task page that composition needs."""

    name: str
    title: str
    stylesheets: tuple[str, ...]
    scripts: tuple[str, ...]
    inline: tuple[str, ...]
    styles: tuple[str, ...]
    body: str


def base_dir() -> Path:
    """The wheel's folder of MiniWoB base task pages."""
    from toolpath.tools.web.browser import miniwob_html

    return miniwob_html() / "miniwob"


def base_tasks(source: Path | None = None) -> list[str]:
    """Names of the base tasks in ``source`` (default: the miniwob wheel's)."""
    return sorted(p.stem for p in (source or base_dir()).glob("*.html"))


def load_base(name: str, source: Path | None = None) -> BasePage:
    """Parse base task ``name`` from ``source``."""
    folder = source or base_dir()
    path = folder / f"{name}.html"
    if not path.is_file():
        close = difflib.get_close_matches(name, base_tasks(folder), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"no MiniWoB base task {name!r} in {folder}{hint}")
    return parse_base(name, path.read_text(encoding="utf-8"))


_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
_SRC = re.compile(r"""\bsrc\s*=\s*["']([^"']+)["']""", re.I)
_LINK = re.compile(r"<link\b[^>]*>", re.I)
_HREF = re.compile(r"""\bhref\s*=\s*["']([^"']+)["']""", re.I)
_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.S | re.I)
_BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.S | re.I)
_WRAP = re.compile(r"""<div\b[^>]*\bid\s*=\s*["']wrap["'][^>]*>""", re.I)
_DIV = re.compile(r"<(/?)div\b[^>]*>", re.I)
_TITLE = re.compile(r"<title>(.*?)</title>", re.S | re.I)


def parse_base(name: str, text: str) -> BasePage:
    """Split a task page into its stylesheets, scripts, styles and task markup."""
    scripts, inline = [], []
    for attrs, body in _SCRIPT.findall(text):
        src = _SRC.search(attrs)
        if src:
            scripts.append(src.group(1))
        elif body.strip():
            inline.append(body)
    sheets = [
        h.group(1)
        for tag in _LINK.findall(text)
        if "stylesheet" in tag.lower() and (h := _HREF.search(tag))
    ]
    body_match = _BODY.search(_SCRIPT.sub("", text))
    if not inline or body_match is None:
        raise ConfigError(f"{name} does not look like a MiniWoB task page (no script or body)")
    title = _TITLE.search(text)
    return BasePage(
        name=name,
        title=html.unescape(title.group(1).strip()) if title else name,
        stylesheets=tuple(sheets),
        scripts=tuple(scripts),
        inline=tuple(inline),
        styles=tuple(_STYLE.findall(text)),
        body=_wrap_inner(body_match.group(1)),
    )


def _wrap_inner(body: str) -> str:
    """The markup inside ``<div id="wrap">`` (the whole body if there is none)."""
    start = _WRAP.search(body)
    if start is None:
        return body.strip()
    depth = 1
    for tag in _DIV.finditer(body, start.end()):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return body[start.end() : tag.start()].strip()
    return body[start.end() :].strip()


# --------------------------------------------------------------------------- CSS scoping


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def _scope_selector(selector: str, scope: str) -> str | None:
    sel = selector.strip()
    if not sel or any(pid in sel for pid in PAGE_IDS):
        return None
    if ".ui-" in sel:  # jQuery UI widgets live under <body>, outside every section
        return sel
    sel = re.sub(r"^(html\b\s*)?(body\b\s*)?", "", sel).strip()
    if not sel:
        return scope
    if re.match(r"#wrap\b", sel):
        return scope + sel[len("#wrap") :]
    return f"{scope} {sel}"


def scope_css(css: str, scope: str) -> str:
    """Prefix every rule of ``css`` with ``scope`` (``body``/``#wrap`` become ``scope``)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out: list[str] = []
    i = 0
    while (brace := css.find("{", i)) >= 0:
        depth, end = 1, brace + 1
        while end < len(css) and depth:
            depth += {"{": 1, "}": -1}.get(css[end], 0)
            end += 1
        head, body = css[i:brace].strip(), css[brace + 1 : end - 1]
        if head.startswith(("@media", "@supports")):
            out.append(f"{head} {{\n{scope_css(body, scope)}\n}}")
        elif head.startswith("@"):
            out.append(f"{head} {{{body}}}")
        else:
            sels = [s for part in _split_top(head) if (s := _scope_selector(part, scope))]
            if sels:
                out.append(f"{', '.join(sels)} {{{body}}}")
        i = end
    return "\n".join(out)


# --------------------------------------------------------------------------- the page

_PAGE_CSS = """
#wrap { height: auto; min-height: 210px; }
#query { height: auto; min-height: 44px; }
.wob-sub { border-top: 1px dashed #bbb; height: auto !important; min-height: 0 !important;
  position: relative !important; }
.wob-sub > #query { display: none; }
"""

_RUNTIME = r"""
var WOB_COMPOSE = (function () {
  var cfg = null, subs = [], ended = [], finished = [], early = null, lastActed = null;
  var PAGE = /^(wrap|reward-display|sync-task-cover|click-canvas|attention-canvas)$/;
  function home(el) {
    var box = el && el.closest ? el.closest('[data-wob-sub]') : null;
    return box ? +box.getAttribute('data-wob-sub') : null;
  }
  function pick(root, sel) {
    var found;
    try { found = Array.prototype.slice.call(document.querySelectorAll(sel)); } catch (e) { return []; }
    var own = found.filter(function (el) { return home(el) === root.wobIndex; });
    return own.length ? own : found.filter(function (el) { return home(el) === null; });
  }
  function mark(el, i) {
    if (el.nodeType === 1 && !el.hasAttribute('data-wob-sub') && !PAGE.test(el.id || '') &&
        !/^(SCRIPT|STYLE|LINK)$/.test(el.tagName)) el.setAttribute('data-wob-sub', i);
  }
  function claim(i, fn) {
    var before = new Set(document.body.children);
    try { return fn(); } finally {
      Array.prototype.forEach.call(document.body.children, function (el) {
        if (!before.has(el)) mark(el, i);
      });
    }
  }
  function fit() {
    subs.forEach(function (s) {
      s.root.style.removeProperty('min-height');
      var top = s.root.getBoundingClientRect().top, bottom = top;
      s.root.querySelectorAll('*').forEach(function (el) {
        var r = el.getBoundingClientRect();
        if (r.height > 0 && r.bottom > bottom) bottom = r.bottom;
      });
      s.root.style.setProperty('min-height', Math.ceil(bottom - top + 4) + 'px', 'important');
    });
  }
  function acted(e) {
    var k = home(e.target);
    if (!cfg || k === null || typeof WOB_DONE_GLOBAL === 'undefined' || WOB_DONE_GLOBAL) return;
    lastActed = k;
    for (var j = 0; j < k && !early; j++) if (!(ended[j] > 0)) early = {subtask: k, pending: j};
  }
  ['mousedown', 'keydown'].forEach(function (t) { document.addEventListener(t, acted, true); });
  var ui = window.jQuery && window.jQuery.ui;
  if (ui && ui.dialog && ui.dialog.prototype._appendTo) {  // a dialog stays in its section
    var appendTo = ui.dialog.prototype._appendTo;
    ui.dialog.prototype._appendTo = function () {
      var box = this.element.closest('.wob-sub');
      return box.length ? box : appendTo.apply(this, arguments);
    };
  }
  new MutationObserver(function (changes) {
    if (lastActed === null) return;
    changes.forEach(function (c) {
      Array.prototype.forEach.call(c.addedNodes, function (el) { mark(el, lastActed); });
    });
  }).observe(document.body, {childList: true});
  function standIn(target, own) {
    return new Proxy(target, {
      get: function (t, key) {
        if (Object.prototype.hasOwnProperty.call(own, key)) return own[key];
        var v = t[key];
        return (typeof v === 'function' && typeof key === 'string' && /^[a-z]/.test(key))
          ? v.bind(t) : v;
      },
      set: function (t, key, value) {
        if (Object.prototype.hasOwnProperty.call(own, key)) own[key] = value; else t[key] = value;
        return true;
      },
    });
  }
  function quoted(v) { return '"' + String(v).replace(/["\\]/g, '\\$&') + '"'; }
  function scopedDocument(root) {
    var one = function (sel) { return pick(root, sel)[0] || null; };
    return standIn(document, {
      getElementById: function (id) { return one('[id=' + quoted(id) + ']'); },
      getElementsByClassName: function (names) {
        return pick(root, String(names).trim().split(/\s+/).map(function (c) {
          return '.' + CSS.escape(c); }).join(''));
      },
      getElementsByTagName: function (tag) { return pick(root, tag); },
      getElementsByName: function (name) { return pick(root, '[name=' + quoted(name) + ']'); },
      querySelector: one,
      querySelectorAll: function (sel) { return pick(root, sel); },
    });
  }
  function scopedD3(real, root, real_of) {
    if (!real) return real;
    var d = Object.create(real);
    d.select = function (x) {
      return real.select(typeof x === 'string' ? (pick(root, x)[0] || null) : real_of(x));
    };
    d.selectAll = function (x) {
      return real.selectAll(typeof x === 'string' ? pick(root, x) : real_of(x));
    };
    return d;
  }
  function scopedJQuery(real, root, real_of) {
    if (!real) return real;
    var q = function (sel, ctx) {
      var out;
      if (typeof sel === 'string' && ctx === undefined && !/^\s*</.test(sel)) {
        var made = real('body > [data-wob-sub]:not(.wob-sub)').filter(function () {
          return home(this) === root.wobIndex;
        });
        out = real(sel, root).add(made.filter(sel)).add(made.find(sel));
        if (!out.length) out = real(sel).filter(function () { return home(this) === null; });
      } else {
        out = real(real_of(sel), real_of(ctx));
      }
      out.wobScope = q;  // .appendTo('#area') and the like look in this section too
      return out;
    };
    Object.setPrototypeOf(q, real);
    q.fn = q.prototype = real.fn;
    if (!real.fn.wobScoped) {
      real.fn.wobScoped = true;
      ['appendTo', 'prependTo', 'insertBefore', 'insertAfter', 'replaceAll'].forEach(function (m) {
        var original = real.fn[m];
        real.fn[m] = function (target) {
          for (var o = this; o && typeof target === 'string'; o = o.prevObject) {
            if (o.wobScope) { target = o.wobScope(target); break; }
          }
          return original.call(this, target);
        };
      });
    }
    return q;
  }
  function scopedCore(i) {
    var c = Object.create(core);
    c.startEpisode = function () {};
    c.startEpisodeReal = function () {};
    c.endEpisode = function (reward, timeProportional, reason) { finish(i, reward, reason); };
    return c;
  }
  function label(i) { return 'subtask ' + (i + 1) + ' (' + cfg.names[i] + ')'; }
  function finish(i, reward, reason) {
    if (WOB_DONE_GLOBAL || core.EP_TIMER === null || ended[i] !== undefined) return;
    ended[i] = reward;
    finished.push(i);
    if (!(reward > 0)) {
      core.endEpisode(-1.0, false, label(i) + ' failed' + (reason ? ': ' + reason : ''));
      return;
    }
    for (var j = 0; j < i; j++) {
      if (!(ended[j] > 0)) {
        core.endEpisode(-1.0, false, label(i) + ' was done before ' + label(j));
        return;
      }
    }
    if (i === subs.length - 1) core.endEpisode(1.0, true, 'every subtask done in order');
  }
  function sentence(t) { return t.replace(/\s+/g, ' ').trim().replace(/[.!\s]+$/, ''); }
  function lowerFirst(t) { return /^[A-Z][a-z]/.test(t) ? t[0].toLowerCase() + t.slice(1) : t; }
  function ing(v) {
    v = v.toLowerCase();
    if (cfg.verbs[v]) return cfg.verbs[v];
    return /ie$/.test(v) ? v.slice(0, -2) + 'ying' : /[^e]e$/.test(v) ? v.slice(0, -1) + 'ing' : v + 'ing';
  }
  function gerund(t) {
    var m = /^([A-Za-z]+)(.*)$/.exec(t);
    if (!m) return t;
    var rest = m[2].replace(/ and (click|press|select|enter|type|submit|close|check|choose)\b/g,
      function (_, v) { return ' and ' + ing(v); });
    return ing(m[1]) + rest;
  }
  function chain(parts) {
    return parts.map(function (p, i) { return i ? lowerFirst(p) : p; }).join(', and then ');
  }
  function instruction(parts) {
    if (!cfg.reverse || parts.length < 2) return chain(parts) + '.';
    return chain(parts.slice(1)) + ', after ' + gerund(lowerFirst(parts[0])) + '.';
  }
  function genProblem() {
    ended = []; finished = []; early = null; lastActed = null;
    subs.forEach(function (s, i) { if (s.api.genProblem) claim(i, s.api.genProblem); });
    fit();
    var parts = subs.map(function (s) {
      var q = s.root.querySelector('#query');
      return sentence(q ? q.textContent : '');
    });
    document.getElementById('query').textContent = instruction(parts);
  }
  return {
    setup: function (c) { cfg = c; },
    add: function (i, factory, d3v4) {
      var root = document.getElementById('wob-sub-' + i);
      root.wobIndex = i;
      var doc = scopedDocument(root);
      var own = {onload: null, document: doc};
      var win = standIn(window, own);
      var real_of = function (x) { return x === doc ? document : x === win ? window : x; };
      var d3 = scopedD3(d3v4 ? window.WOB_D3V4 : window.d3, root, real_of);
      var jq = scopedJQuery(window.jQuery, root, real_of);
      var api = claim(i, function () {
        return factory.call(window, doc, win, d3, jq, jq, scopedCore(i));
      }) || {};
      subs[i] = {root: root, api: api, own: own};
    },
    genProblem: genProblem,
    onload: function () {
      if (cfg.seed !== null) Math.seedrandom(cfg.seed);
      subs.forEach(function (s, i) { if (typeof s.own.onload === 'function') claim(i, s.own.onload); });
      core.startEpisode();
    },
    outcomes: function () {
      return cfg.names.map(function (_, i) { return ended[i] === undefined ? null : ended[i]; });
    },
    report: function () {
      return {names: cfg.names, outcomes: this.outcomes(), finished: finished.slice(), early: early};
    },
  };
})();
"""


def compose(bases: Sequence[BasePage], *, reverse: bool = False, seed: int | None = None) -> str:
    """The HTML of the page that composes ``bases`` in order."""
    if len(bases) < 2:
        raise ConfigError("a compositional task needs at least two base tasks")
    both_d3 = any(D3V4 in b.scripts for b in bases) and any(D3V3 in b.scripts for b in bases)
    scripts: list[str] = []
    for b in bases:
        scripts.extend(s for s in b.scripts if s not in scripts)
    head_scripts = []
    for src in scripts:
        if both_d3 and src == D3V3:
            continue
        head_scripts.append(f'<script src="{html.escape(src)}"></script>')
        if both_d3 and src == D3V4:  # keep v4 aside for the tasks that use it; d3 = v3
            head_scripts.append("<script>var WOB_D3V4 = d3;</script>")
            head_scripts.append(f'<script src="{D3V3}"></script>')
    sheets: list[str] = []
    for b in bases:
        sheets.extend(s for s in b.stylesheets if s not in sheets)
    styles = [_PAGE_CSS]
    sections, factories, n = [], [], len(bases)
    for i, b in enumerate(bases):
        scope = f"#wob-sub-{i}"
        styles.extend(scope_css(css, scope) for css in b.styles)
        sections.append(
            f'<div class="wob-sub" id="wob-sub-{i}" data-wob-sub="{i}" style="z-index: {n - i}" '
            f'data-wob-task="{html.escape(b.name)}">\n{b.body}\n</div>'
        )
        code = "\n;\n".join(b.inline)
        uses_v4 = both_d3 and D3V4 in b.scripts
        factories.append(
            f"WOB_COMPOSE.add({i}, function (document, window, d3, $, jQuery, core) {{\n"
            f"{code}\n;\nreturn {{genProblem: typeof genProblem === 'function' ? genProblem "
            f": null}};\n}}, {json.dumps(uses_v4)});"
        )
    config = {
        "names": [b.name for b in bases],
        "reverse": reverse,
        "seed": seed,
        "verbs": VERBS,
    }
    title = " + ".join(b.name for b in bases) + (" (reverse)" if reverse else "")
    link_tags = "\n".join(
        f'<link rel="stylesheet" type="text/css" href="{html.escape(s)}">' for s in sheets
    )
    return f"""<!DOCTYPE html>
<!-- Generated by toolpath (toolpath web generate) from MiniWoB++ base tasks (MIT). -->
<html>
<head>
<meta charset="utf-8">
<title>Compositional task: {html.escape(title)}</title>
{link_tags}
<style>
{chr(10).join(styles)}
</style>
{chr(10).join(head_scripts)}
</head>
<body>
<div id="wrap">
<div id="query"></div>
{chr(10).join(sections)}
</div>
<script>
{_RUNTIME}
WOB_COMPOSE.setup({json.dumps(config)});
{chr(10).join(factories)}
var genProblem = WOB_COMPOSE.genProblem;
window.onload = WOB_COMPOSE.onload;
</script>
</body>
</html>
"""


def task_name(base: Sequence[str], *, reverse: bool = False) -> str:
    """CompWoB's file naming: ``a_b_c`` and ``a_b_c-reverse``."""
    return "_".join(base) + ("-reverse" if reverse else "")


def generate(
    base: Sequence[str],
    out: str | Path,
    *,
    reverse: bool = False,
    seed: int | None = None,
    source: str | Path | None = None,
) -> Path:
    """Write the page composing the base tasks ``base`` (in order) into ``out``.

    ``source`` is a folder of base task pages (default: the miniwob wheel's). ``seed``
    seeds the first episode of a page opened by hand; a driver seeds every episode itself.
    Returns the written file, ``out/<a_b_c>[-reverse].html``.
    """
    names = [b.strip() for b in base if b.strip()]
    if len(names) < 2:
        raise ConfigError(f"compose at least two base tasks, got {len(names)}")
    folder = Path(source) if source is not None else None
    pages = [load_base(n, folder) for n in names]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{task_name(names, reverse=reverse)}.html"
    path.write_text(compose(pages, reverse=reverse, seed=seed), encoding="utf-8")
    return path


def sample_bases(
    n: int, *, size: int = 2, pool: Sequence[str] = COMPOSABLE, seed: int = 0
) -> list[list[str]]:
    """``n`` distinct random compositions of ``size`` different base tasks from ``pool``."""
    if size < 2 or size > len(pool):
        raise ConfigError(f"size must be between 2 and {len(pool)}, not {size}")
    rng = random.Random(seed)
    seen: set[tuple[str, ...]] = set()
    out: list[list[str]] = []
    for _ in range(n * 50):
        combo = tuple(rng.sample(list(pool), size))
        if combo not in seen:
            seen.add(combo)
            out.append(list(combo))
        if len(out) == n:
            break
    return out
