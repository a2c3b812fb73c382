"""Hanging protocols as data: which layout, which series where, which window, for a study.

A protocol is a JSON file (bundled ones in ``resources/hanging_protocols``, the user's in
``<user config>/hanging_protocols``; a user file with the same name wins)::

    {"name": "MR brain T1 with prior",
     "priority": 20,                       # the highest-priority protocol that matches applies
     "match": {"modality": "MR",           # regexes, case-insensitive, on any series of the study
               "body_part": "BRAIN|HEAD",
               "series_description": "T1",
               "min_series": 2, "max_series": 20},
     "layout": "1x3",                      # 1x1, 1x3, 2x2, mpr (left out: the user's layout stays)
     "active_view": "axial",
     "primary": [{"series_description": "T1.*(post|gd)"}, {"series_description": "T1"}],  # opened
                                           # first: the largest series of the first rule that finds one
     "compare": {"study": "prior", "series_description": "T1"},   # shown beside (optional)
     "link": "world",                      # world (same frame of reference) or index
     "window": {"relative": "MR brain / soft tissue"}}   # or {"preset": "Brain"} or {"width": W, "level": L}

Series are described by plain dicts or objects with the SeriesInfo fields (modality,
description, body_part, study_uid, study_date, n_images, rows, columns). No Qt here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAYOUTS = ("1x1", "1x3", "2x2", "mpr")


@dataclass
class Protocol:
    name: str
    match: dict[str, Any] = field(default_factory=dict)
    layout: str | None = None  # None: the layout the user has stays
    active_view: str | None = None
    primary: dict[str, Any] | list[dict[str, Any]] = field(default_factory=dict)  # list: in order
    compare: dict[str, Any] | None = None
    link: str = "world"
    window: dict[str, Any] | None = None
    priority: int = 0
    source: str = ""  # the file it came from

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "") -> Protocol:
        if not d.get("name"):
            raise ValueError(f"{source or 'protocol'}: a hanging protocol needs a name")
        layout = d.get("layout")
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f"{source}: layout must be one of {LAYOUTS}, not {layout!r}")
        link = d.get("link", "world")
        if link not in ("world", "index"):
            raise ValueError(f"{source}: link must be 'world' or 'index', not {link!r}")
        rules = [d.get("match") or {}, d.get("compare") or {}]
        rules += d["primary"] if isinstance(d.get("primary"), list) else [d.get("primary") or {}]
        for key, rule in zip(("match", "compare") + ("primary",) * (len(rules) - 2), rules, strict=True):
            for k, v in rule.items():
                if isinstance(v, str) and k not in ("study",):
                    try:
                        re.compile(v)
                    except re.error as exc:
                        raise ValueError(f"{source}: {key}.{k} is not a valid regex ({exc})") from exc
        return cls(name=str(d["name"]), match=dict(d.get("match") or {}), layout=layout,
                   active_view=str(d["active_view"]) if d.get("active_view") else None,
                   primary=([dict(r) for r in d["primary"]] if isinstance(d.get("primary"), list)
                            else dict(d.get("primary") or {})),
                   compare=dict(d["compare"]) if d.get("compare") else None, link=link,
                   window=dict(d["window"]) if d.get("window") else None,
                   priority=int(d.get("priority", 0)), source=source)

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "priority": self.priority, "match": self.match, "primary": self.primary,
             "link": self.link}
        if self.layout:
            d["layout"] = self.layout
        if self.active_view:
            d["active_view"] = self.active_view
        if self.compare:
            d["compare"] = self.compare
        if self.window:
            d["window"] = self.window
        return d


def _get(series, key: str) -> str:
    alias = {"series_description": "description"}
    if isinstance(series, dict):
        v = series.get(key, series.get(alias.get(key, key), ""))
    else:
        v = getattr(series, alias.get(key, key), getattr(series, key, ""))
    return "" if v is None else str(v)


def series_matches(series, rule: dict[str, Any]) -> bool:
    """True when every regex of ``rule`` (modality, series_description, body_part ...) is found
    in the series' field (case-insensitive); a body_part rule is skipped for a series that does
    not name its body part."""
    for key, pattern in rule.items():
        if key in ("min_series", "max_series", "study"):
            continue
        value = _get(series, key)
        if key == "body_part" and not value:
            continue  # most series do not say: the other rules decide
        if not re.search(str(pattern), value, re.IGNORECASE):
            return False
    return True


def protocol_matches(p: Protocol, series: list) -> bool:
    """Does ``p`` apply to a study with these series?"""
    n = len(series)
    if n < int(p.match.get("min_series", 1)) or n > int(p.match.get("max_series", 10**9)):
        return False
    rule = {k: v for k, v in p.match.items() if k not in ("min_series", "max_series")}
    return any(series_matches(s, rule) for s in series) if rule else True


def _size(s) -> float:
    def num(k):
        try:
            return float(_get(s, k) or 0)
        except ValueError:
            return 0.0
    return num("n_images") * max(1.0, num("rows") * num("columns"))


def pick_series(series: list, rule: dict[str, Any]):
    """The largest series matching ``rule`` (None when none does)."""
    hits = [s for s in series if series_matches(s, rule)]
    return max(hits, key=_size) if hits else None


def choose(protocols: list[Protocol], current: list, others: list | None = None):
    """(protocol, primary series, compare series or None) for a study's series ``current``;
    ``others`` are series of the patient's other studies (priors). None when nothing matches."""
    for p in sorted(protocols, key=lambda x: -x.priority):
        if not protocol_matches(p, current):
            continue
        primary = None
        for rule in (p.primary if isinstance(p.primary, list) else [p.primary] if p.primary else []):
            primary = pick_series(current, rule)  # rules in order of preference
            if primary is not None:
                break
        if primary is None:
            primary = max(current, key=_size) if current else None
        compare = None
        if p.compare:
            rule = p.compare
            pool = [s for s in current if s is not primary]
            if rule.get("study", "prior") == "prior":
                pool = sorted(others or [], key=lambda s: _get(s, "study_date"), reverse=True)
                # the most recent prior study that has a matching series
                for date in dict.fromkeys(_get(s, "study_date") for s in pool):
                    hit = pick_series([s for s in pool if _get(s, "study_date") == date], rule)
                    if hit is not None:
                        compare = hit
                        break
            else:
                compare = pick_series(pool, rule)
        return p, primary, compare
    return None


def load_protocols(dirs: list[Path]) -> list[Protocol]:
    """Protocols from the ``*.json`` of each folder (later folders override same names).
    A broken file is skipped and named in the returned list's ``errors`` attribute."""
    by_name: dict[str, Protocol] = {}
    errors: list[str] = []
    for d in dirs:
        if not Path(d).is_dir():
            continue
        for f in sorted(Path(d).glob("*.json")):
            try:
                p = Protocol.from_dict(json.loads(f.read_text(encoding="utf-8")), str(f))
            except (OSError, ValueError) as exc:
                errors.append(f"{f}: {exc}")
                continue
            by_name[p.name] = p
    out = _ProtocolList(by_name.values())
    out.errors = errors
    return out


class _ProtocolList(list):
    errors: list[str]


def save_protocol(p: Protocol, folder: Path) -> Path:
    """Write ``p`` as ``<folder>/<name>.json`` (name made file-safe)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", p.name).strip("_") or "protocol"
    out = folder / f"{safe}.json"
    out.write_text(json.dumps(p.to_dict(), indent=2), encoding="utf-8")
    return out


def protocol_dirs() -> list[Path]:
    """Bundled protocols, then the user's (which override by name)."""
    from medview.config import resources_dir, user_config_dir

    return [resources_dir() / "hanging_protocols", user_config_dir() / "hanging_protocols"]
