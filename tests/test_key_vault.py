"""The key vault: format, content hash, old Tree-Ring key files, several schemes in one scan, no secrets in
what is printed."""

import json
import pickle

import pytest
import torch

from engine import key_vault, treering
from engine.watermarks import gaussian_shading, ringid, scheme_for
from forensics_app.cli import main


def _vault(tmp_path, *key_tuples, provenance="test vault"):
    keys = tuple(k for t in key_tuples for k in t)
    path = tmp_path / "vault.json"
    key_vault.KeyVault(keys, provenance=provenance).save(path)
    return path


def test_round_trip_with_hash_and_provenance(tmp_path):
    gs = gaussian_shading.new_keys(2, seed=1).keys
    ri = ringid.new_keys(4, seed=2).keys
    path = _vault(tmp_path, gs, ri)
    data = json.loads(path.read_text())
    assert data["format"] == "treering-forensics/key-vault" and data["version"] == 1
    assert data["provenance"] == "test vault" and data["created_utc"].endswith("+00:00")
    assert {k["scheme"] for k in data["keys"]} == {"gaussian-shading", "ringid"}
    vault = key_vault.load_vault(path)
    assert vault.keys == gs + ri and vault.schemes == ("gaussian-shading", "ringid")
    assert vault.content_sha256() == data["content_sha256"]


def test_edited_vault_is_refused(tmp_path):
    path = _vault(tmp_path, gaussian_shading.new_keys(1, seed=1).keys)
    data = json.loads(path.read_text())
    data["keys"][0]["nonce_hex"] = "11" * 12
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="content hash does not match"):
        key_vault.load_vault(path)


def test_pickle_and_unknown_scheme_refused(tmp_path):
    pkl = tmp_path / "gs_key.pkl"
    pkl.write_bytes(pickle.dumps({"key": b"x" * 32}))
    with pytest.raises(ValueError, match="cannot read key file"):
        key_vault.load_vault(pkl)
    entry = {"scheme": "seal", "id": "k"}
    with pytest.raises(ValueError, match="unknown or unsupported scheme 'seal'"):
        key_vault.vault_from_json(json.dumps({"format": key_vault.VAULT_FORMAT, "version": 1, "keys": [entry],
                                              "content_sha256": ""}))


def test_tree_ring_key_files_load_unchanged(tmp_path):
    keys = treering.dec_inv_keys((4, 32, 32))
    path = tmp_path / "tr.json"
    keys.save(path)
    loaded = key_vault.load_keys_for_scan(path)
    assert isinstance(loaded, treering.KeySet) and loaded == treering.KeySet.load(path)
    assert scheme_for(loaded).name == "tree-ring"


def test_several_schemes_corrected_over_all_keys(tmp_path):
    tr = treering.dec_inv_keys((4, 32, 32)).keys
    gs = gaussian_shading.new_keys(3, seed=4).keys
    ri = ringid.new_keys(8, seed=5).keys
    keys = key_vault.load_vault(_vault(tmp_path, tr, gs, ri)).for_scan()
    scheme = scheme_for(keys)
    assert scheme.name == "multi" and len(keys) == 14
    z = torch.randn(3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    z = torch.cat([gaussian_shading.inject(z[:1], gs[1]), ringid.inject(z[1:2], ri[5]), z[2:]])
    scores = scheme.score(z, keys, "effective")
    verdicts = [scheme.decide(row, 0.01) for row in scores]
    assert [v.predicted_key for v in verdicts] == [gs[1].id, ri[5].id, None]
    assert all(v.keys_tested == 14 and v.corrected_threshold == pytest.approx(0.01 / 14) for v in verdicts)


def test_cli_keys_new_and_list_never_print_secrets(tmp_path, capsys):
    out = tmp_path / "gs.json"
    assert main(["keys", "new", "--scheme", "gaussian-shading", "--count", "2", "--out", str(out),
                 "--provenance", "case 17 test keys"]) == 0
    assert main(["keys", "list", str(out)]) == 0
    printed = capsys.readouterr().out
    vault = key_vault.load_vault(out)
    assert "case 17 test keys" in printed and "gaussian-shading" in printed
    for k in vault.keys:
        assert k.id in printed and k.sha256[:16] in printed
        assert k.key_hex not in printed and k.nonce_hex not in printed and k.watermark_hex not in printed
    prc_path = tmp_path / "p.json"
    assert main(["keys", "new", "--scheme", "prc", "--count", "1", "--out", str(prc_path)]) == 0
    assert main(["keys", "list", str(prc_path)]) == 0
    printed = capsys.readouterr().out
    (key,) = key_vault.load_vault(prc_path).keys
    assert key.id in printed and key.seed_hex not in printed


def test_cli_import_gs_from_hex_round_trips(tmp_path, capsys):
    out = tmp_path / "imported.json"
    assert main(["keys", "import-gs", "--id", "deployment", "--key-hex", "00" * 32, "--nonce-hex", "00" * 12,
                 "--watermark-hex", "a5" * 32, "--out", str(out)]) == 0
    (key,) = key_vault.load_vault(out).keys
    assert (key.latent_shape, key.hw, key.length) == ((4, 64, 64), 8, 256)
    # the all-zero key's keystream is the RFC 8439 vector: the sign pattern starts with its bits XOR the tiles
    assert key.keystream_bits().reshape(-1)[:8].tolist() == [0, 1, 1, 1, 0, 1, 1, 0]
    assert main(["keys", "import-gs", "--id", "bad", "--key-hex", "00" * 31, "--nonce-hex", "00" * 12,
                 "--watermark-hex", "a5" * 32, "--out", str(tmp_path / "bad.json")]) == 2
    assert "key_hex must be 64" in capsys.readouterr().err


def test_case_file_keeps_public_records_of_other_schemes(tmp_path):
    from engine.watermarks.base import keys_from_record

    gs = gaussian_shading.new_keys(2, seed=8)
    mixed = key_vault.KeyVault(gs.keys + ringid.new_keys(2, seed=9).keys).for_scan()
    for keys in (gs, mixed):
        text = keys.to_json()
        assert all(k.key_hex not in text and k.nonce_hex not in text for k in gs.keys)
        back = keys_from_record(text)
        assert back.ids == keys.ids and [k.scheme for k in back.keys] == [k.scheme for k in keys.keys]
        assert back[gs.keys[0].id].to_json_dict()["sha256"] == gs.keys[0].sha256
    tr = treering.dec_inv_keys((4, 32, 32))
    assert keys_from_record(tr.to_json()) == tr
