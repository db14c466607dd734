"""Configuration through Python: values, precedence and errors that name the variable."""

from __future__ import annotations

import os

import pytest

import swimraft


def test_defaults_follow_the_design_table(monkeypatch):
    monkeypatch.setenv("RINGRIFT_NODE_ID", "gpu-h100-1")
    cfg = swimraft.Config()
    assert cfg.node_id == "gpu-h100-1"
    assert cfg.get("membership", "mode") == "http"
    assert cfg.get("membership", "swim_enabled") is False
    assert cfg.get("membership", "swim_port") == 7947
    assert cfg.get("raft", "raft_port") == 4321
    assert cfg.get("raft", "mode") == "bully"
    assert cfg.get("cluster_name") == "swimraft"
    assert cfg.get("network", "advertise_host") == "127.0.0.1"
    assert cfg.get("network", "p2p_port") == 8770


def test_explicit_beats_environment_beats_preset(monkeypatch):
    monkeypatch.setenv("RINGRIFT_SWIM_PORT", "8000")
    monkeypatch.setenv("RINGRIFT_SWIM_GOSSIP_INTERVAL", "2")
    assert swimraft.Config().get("membership", "swim_port") == 8000
    assert swimraft.Config(swim_port=9000).get("membership", "swim_port") == 9000
    assert swimraft.Config(use_env=False).get("membership", "swim_port") == 7947
    timing = swimraft.Config().get("membership", "timing")
    assert timing["probe_period_ms"] == 2000
    # the RTT and suspicion timeout scale with the period
    lan = swimraft.Config(use_env=False).get("membership", "timing")
    assert timing["probe_rtt_ms"] == lan["probe_rtt_ms"] * 2000 // lan["probe_period_ms"]
    assert timing["suspicion_timeout_ms"] > lan["suspicion_timeout_ms"]


@pytest.mark.parametrize(
    "var,value,needle",
    [
        ("RINGRIFT_SWIM_PORT", "abc", "RINGRIFT_SWIM_PORT"),
        ("RINGRIFT_SWIM_PORT", "70000", "70000"),
        ("RINGRIFT_RAFT_PORT", "-1", "RINGRIFT_RAFT_PORT"),
        ("RINGRIFT_MEMBERSHIP_MODE", "gossip", "RINGRIFT_MEMBERSHIP_MODE"),
        ("RINGRIFT_CONSENSUS_MODE", "paxos", "paxos"),
        ("RINGRIFT_SWIM_ENABLED", "maybe", "RINGRIFT_SWIM_ENABLED"),
        ("RINGRIFT_SWIM_SEEDS", "10.0.0.1", "RINGRIFT_SWIM_SEEDS"),
        ("RINGRIFT_SWIM_SEEDS", "10.0.0.1:notaport", "notaport"),
        ("RINGRIFT_RAFT_VOTERS", "a=10.0.0.1", "RINGRIFT_RAFT_VOTERS"),
        ("RINGRIFT_CLUSTER_KEY", "s3cret", "RINGRIFT_CLUSTER_KEY"),
        ("RINGRIFT_SWIM_GOSSIP_INTERVAL", "0", "RINGRIFT_SWIM_GOSSIP_INTERVAL"),
        ("RINGRIFT_BIND_HOST", "not-an-ip", "RINGRIFT_BIND_HOST"),
        ("RINGRIFT_RAFT_ENABLED", "sometimes", "RINGRIFT_RAFT_ENABLED"),
        ("RINGRIFT_RAFT_JOIN", "later", "RINGRIFT_RAFT_JOIN"),
        ("RINGRIFT_SWIM_BIND_PORT", "port", "RINGRIFT_SWIM_BIND_PORT"),
    ],
)
def test_bad_environment_values_name_the_variable(monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    with pytest.raises(swimraft.ConfigError) as info:
        swimraft.Config()
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)
    assert info.value.kind == "invalid_config"


@pytest.mark.skipif(not hasattr(os, "environb"), reason="needs byte environment values")
@pytest.mark.parametrize("var", ["RINGRIFT_DATA_DIR", "RINGRIFT_NODE_ID", "RINGRIFT_AUTH_TOKEN"])
def test_a_variable_that_is_not_utf8_is_refused_not_read_lossily(monkeypatch, var):
    # Read lossily, b"/srv/d\xffata" would become another (empty) data directory.
    monkeypatch.setitem(os.environb, var.encode(), b"/srv/d\xffata-s3cret")
    with pytest.raises(swimraft.ConfigError, match=f"{var}.*not valid UTF-8") as info:
        swimraft.Config()
    assert ("s3cret" in str(info.value)) is (var != "RINGRIFT_AUTH_TOKEN")


def test_cluster_key_value_is_never_echoed(monkeypatch):
    monkeypatch.setenv("RINGRIFT_CLUSTER_KEY", "topsecret-value")
    with pytest.raises(swimraft.ConfigError) as info:
        swimraft.Config()
    assert "topsecret-value" not in str(info.value)


def test_mode_needing_a_disabled_protocol_is_an_error_but_hybrid_is_not(monkeypatch):
    monkeypatch.setenv("RINGRIFT_MEMBERSHIP_MODE", "swim")
    with pytest.raises(swimraft.ConfigError) as info:
        swimraft.Config()
    assert "RINGRIFT_SWIM_ENABLED" in str(info.value)
    monkeypatch.setenv("RINGRIFT_MEMBERSHIP_MODE", "hybrid")
    assert swimraft.Config().get("membership", "mode") == "hybrid"
    monkeypatch.setenv("RINGRIFT_CONSENSUS_MODE", "raft")
    with pytest.raises(swimraft.ConfigError) as info:
        swimraft.Config()
    assert "RINGRIFT_RAFT_ENABLED" in str(info.value)


def test_unknown_and_mistyped_keys_are_rejected():
    with pytest.raises(swimraft.ConfigError) as info:
        swimraft.Config(swim_prot=7947)
    assert "swim_prot" in str(info.value)
    with pytest.raises(swimraft.ConfigError) as info:
        swimraft.Config(swim_port="abc")
    assert "swim_port" in str(info.value)
    with pytest.raises(swimraft.ConfigError):
        swimraft.Config(swim_seeds=["127.0.0.1:1", "nope"])


def test_voters_with_seeds_required_when_raft_enabled(monkeypatch):
    monkeypatch.setenv("RINGRIFT_RAFT_ENABLED", "true")
    monkeypatch.setenv("RINGRIFT_SWIM_SEEDS", "127.0.0.1:7947")
    with pytest.raises(swimraft.ConfigError) as info:
        swimraft.Config()
    assert "RINGRIFT_RAFT_VOTERS" in str(info.value)


def test_auth_token_is_redacted():
    cfg = swimraft.Config(use_env=False, auth_token="hunter2")
    assert "hunter2" not in repr(cfg.to_dict())
    assert cfg.get("security", "auth_token") == "***"
