"""The key vault: one JSON file holding the keys of any initial-noise watermark schemes, with the record an
examiner needs to say where they came from.

    {"format": "treering-forensics/key-vault", "version": 1, "created_utc": "...", "provenance": "free text",
     "content_sha256": "<sha256 of the canonical JSON of the key list>", "keys": [{"scheme": ..., "id": ...}, ...]}

Secrets (Gaussian Shading's key, nonce and watermark) live here and nowhere else: reports and scan records
use each key's public record (`to_json_dict`: id, scheme, parameters, sha256). The content hash is checked on
every load, so an edited vault is refused rather than silently used. Tree-Ring key files of the older format
("treering-forensics/keys") load unchanged as a one-scheme vault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from engine import treering
from engine.watermarks.base import MAX_SCHEME_KEYS, SchemeKeySet, content_sha256

VAULT_FORMAT = "treering-forensics/key-vault"
VAULT_VERSION = 1
MAX_VAULT_BYTES = 32 << 20
MAX_VAULT_KEYS = 3 * MAX_SCHEME_KEYS
MAX_PROVENANCE_CHARS = 4000
SCHEME_NAMES = ("tree-ring", "gaussian-shading", "ringid", "prc")


def _key_from_dict(d: dict):
    if not isinstance(d, dict):
        raise ValueError("a key entry is not an object")
    scheme = d.get("scheme", "tree-ring")
    if scheme == "tree-ring":
        return treering.TreeRingKey.from_json_dict(d)
    if scheme == "gaussian-shading":
        from engine.watermarks.gaussian_shading import GaussianShadingKey

        return GaussianShadingKey.from_vault_dict(d)
    if scheme == "ringid":
        from engine.watermarks.ringid import RingIDKey

        return RingIDKey.from_vault_dict(d)
    if scheme == "prc":
        from engine.watermarks.prc import PRCKey

        return PRCKey.from_vault_dict(d)
    raise ValueError(f"key {d.get('id')!r}: unknown or unsupported scheme {scheme!r} (known: "
                     f"{', '.join(SCHEME_NAMES)})")


def _vault_dict(key) -> dict:
    return key.to_vault_dict() if hasattr(key, "to_vault_dict") else key.to_json_dict()


def _utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class KeyVault:
    keys: tuple
    provenance: str = ""
    created_utc: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a key vault needs at least one key")
        if len(self.keys) > MAX_VAULT_KEYS:
            raise ValueError(f"{len(self.keys)} keys in one vault: at most {MAX_VAULT_KEYS} are supported")
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"key id {dup!r} appears twice: ids must be unique across the whole vault")
        if not isinstance(self.provenance, str) or len(self.provenance) > MAX_PROVENANCE_CHARS:
            raise ValueError(f"the provenance must be text of at most {MAX_PROVENANCE_CHARS} characters")

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def schemes(self) -> tuple[str, ...]:
        seen: list[str] = []
        for k in self.keys:
            if k.scheme not in seen:
                seen.append(k.scheme)
        return tuple(seen)

    def keyset(self, scheme: str):
        keys = tuple(k for k in self.keys if k.scheme == scheme)
        if not keys:
            raise ValueError(f"the key vault holds no {scheme} keys (it holds: {', '.join(self.schemes)})")
        if scheme == "tree-ring":
            return treering.KeySet(keys, name=self.name)
        return SchemeKeySet(keys, scheme=scheme, name=self.name)

    def for_scan(self):
        """What `analyze` takes: the one scheme's key set, or all schemes together (`MultiSchemeKeySet`,
        corrected over every key of every scheme)."""
        if len(self.schemes) == 1:
            return self.keyset(self.schemes[0])
        from engine.watermarks.multi import MultiSchemeKeySet

        return MultiSchemeKeySet(tuple(self.keyset(s) for s in self.schemes), name=self.name)

    def with_keys(self, more, provenance_note: str = "") -> "KeyVault":
        note = (self.provenance + ("\n" if self.provenance else "") + provenance_note).strip()
        return KeyVault(self.keys + tuple(more), provenance=note, created_utc=self.created_utc or _utc_now(),
                        name=self.name)

    def content_sha256(self) -> str:
        return content_sha256({"keys": [_vault_dict(k) for k in self.keys]})

    def to_json(self) -> str:
        return json.dumps({"format": VAULT_FORMAT, "version": VAULT_VERSION, "name": self.name,
                           "created_utc": self.created_utc or _utc_now(), "provenance": self.provenance,
                           "content_sha256": self.content_sha256(), "keys": [_vault_dict(k) for k in self.keys]},
                          indent=1)

    def save(self, path) -> None:
        from engine.atomic_write import write_text_atomic

        write_text_atomic(path, self.to_json())

    def summary_lines(self) -> list[str]:
        """One line per key for `keys list`: scheme, id, public parameters, hash. Never a secret."""
        lines = []
        for k in self.keys:
            d = k.to_json_dict()
            sha = d.get("sha256") or content_sha256(_vault_dict(k))
            detail = ", ".join(f"{n} {d[n]}" for n in ("bits", "copies_per_bit", "index", "radius", "channel")
                               if n in d)
            lines.append(f"{k.scheme:17s} {k.id:24s} latent {'×'.join(map(str, k.latent_shape))}  {detail}  "
                         f"sha256 {sha[:16]}")
        return lines


def vault_from_json(text: str) -> KeyVault:
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("not a key vault (JSON nested too deeply)") from None
    if isinstance(data, dict) and data.get("format") == treering.KEYSET_FORMAT:
        old = treering.KeySet.from_json(text)
        return KeyVault(old.keys, provenance="Tree-Ring key file", name=old.name)
    if not isinstance(data, dict) or data.get("format") != VAULT_FORMAT:
        raise ValueError(f"not a key vault (expected format {VAULT_FORMAT!r} or {treering.KEYSET_FORMAT!r})")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VAULT_VERSION:
        raise ValueError(f"key vault version {version!r} is not one this tool understands (1…{VAULT_VERSION})")
    entries = data.get("keys")
    if not isinstance(entries, list):
        raise ValueError("the key vault has no list of keys")
    if len(entries) > MAX_VAULT_KEYS:
        raise ValueError(f"{len(entries)} keys in one vault: at most {MAX_VAULT_KEYS} are supported")
    for field in ("created_utc", "provenance", "name", "content_sha256"):
        if not isinstance(data.get(field, ""), str):
            raise ValueError(f"the key vault's {field} is not text")
    vault = KeyVault(tuple(_key_from_dict(d) for d in entries), provenance=data.get("provenance", ""),
                     created_utc=data.get("created_utc", ""), name=data.get("name", ""))
    if data.get("content_sha256") != vault.content_sha256():
        raise ValueError("the key vault's content hash does not match its keys: it was changed after it was "
                         "written (or damaged); refusing it")
    return vault


def load_vault(path) -> KeyVault:
    from engine.intake import EvidenceError, open_regular_file

    try:
        with open_regular_file(path) as f:
            raw = f.read(MAX_VAULT_BYTES + 1)
        if len(raw) > MAX_VAULT_BYTES:
            raise ValueError(f"larger than {MAX_VAULT_BYTES >> 20} MiB, too large for a key vault")
        return vault_from_json(raw.decode("utf-8"))
    except EvidenceError as exc:
        raise ValueError(f"cannot read key file: {exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"cannot read key file {Path(path).name}: not UTF-8 text") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read key file {Path(path).name}: {exc}") from exc


def load_keys_for_scan(path):
    """The key set `analyze` takes from a vault or an old Tree-Ring key file (which loads exactly as before)."""
    return load_vault(path).for_scan()


def new_vault_keys(scheme: str, count: int | None, latent_shape, seed: int | None = None, **options):
    """Fresh keys of one scheme (the `keys new --scheme` of the CLI; `engine.key_parameters` holds the options,
    their defaults and limits)."""
    from engine.key_parameters import key_options, make_keys

    return make_keys(scheme, count or key_options(scheme).default_count, latent_shape, options, seed=seed).keys
