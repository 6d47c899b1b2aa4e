from __future__ import annotations

from pathlib import Path

import pytest

from processor.errors import SettingsError
from processor.settings import kafka_setting_error, load

SECRET = "top-secret"
REQUIRED = {
    "CXONE_BASE_URL": "https://cxone.test",
    "CXONE_CLIENT_ID": "client",
    "CXONE_CLIENT_SECRET": SECRET,
}


def env(**extra: str) -> dict[str, str]:
    return {**REQUIRED, **extra}


def refusal(environ: dict[str, str], config_file: Path | None = None) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        load(environ=environ, config_file=config_file)
    return caught.value


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "processor.toml"
    path.write_text(text)
    return path


def test_defaults_with_only_the_required_settings() -> None:
    settings = load(environ=REQUIRED)

    assert settings.cxone_base_url == "https://cxone.test"
    assert settings.cxone_client_secret.reveal() == SECRET
    assert settings.max_in_flight == 32
    assert settings.ordering == "unordered"
    assert settings.bootstrap_servers == "localhost:9092"
    assert settings.kafka["auto.offset.reset"] == "earliest"


def test_environment_beats_file_and_flags_beat_environment(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        "PROCESSOR_MAX_IN_FLIGHT = 10\nprocessor_max_attempts = 7\n"
        "PROCESSOR_GROUP_ID = 'from-file'\n",
    )
    environ = env(PROCESSOR_MAX_IN_FLIGHT="20", PROCESSOR_GROUP_ID="from-env")

    settings = load(
        environ=environ, config_file=path, flags={"PROCESSOR_MAX_IN_FLIGHT": "30"}
    )

    assert settings.max_in_flight == 30
    assert settings.group_id == "from-env"
    assert settings.max_attempts == 7


def test_the_file_alone_can_provide_everything(tmp_path: Path) -> None:
    lines = [f'{name.lower()} = "{value}"' for name, value in REQUIRED.items()]
    path = toml(tmp_path, "\n".join([*lines, "kafka_linger_ms = 5"]))

    settings = load(environ={}, config_file=path)

    assert settings.cxone_client_id == "client"
    assert settings.kafka["linger.ms"] == "5"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_a_missing_required_setting_is_named_first(name: str) -> None:
    environ = {k: v for k, v in REQUIRED.items() if k != name}

    error = refusal(environ)

    assert str(error).startswith(name)
    assert error.name == name


def test_an_empty_required_setting_counts_as_missing() -> None:
    error = refusal(env(CXONE_CLIENT_ID=""))
    assert str(error).startswith("CXONE_CLIENT_ID is required")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROCESSOR_MAX_IN_FLIGHT", "0"),
        ("PROCESSOR_MAX_IN_FLIGHT", "abc"),
        ("PROCESSOR_ACTION_CONCURRENCY", "orders"),
        ("PROCESSOR_ACTION_CONCURRENCY", "orders=zero"),
        ("PROCESSOR_ACTION_CONCURRENCY", "../x=3"),
        ("PROCESSOR_ORDERING", "bad"),
        ("CXONE_BASE_URL", "ftp://cxone.test"),
        ("CXONE_BASE_URL", "cxone.test"),
        ("PROCESSOR_GRACE_PERIOD_S", "nan"),
        ("PROCESSOR_BACKOFF_INITIAL_S", "-1"),
        ("PROCESSOR_HTTP_PORT", "70000"),
        ("PROCESSOR_HTTP_PORT", "metrics"),
    ],
)
def test_an_invalid_value_names_its_variable(name: str, value: str) -> None:
    error = refusal(env(**{name: value}))

    assert str(error).startswith(f"{name} ")
    assert error.name == name
    assert SECRET not in str(error)


def test_settings_that_conflict_are_refused() -> None:
    backoff = env(PROCESSOR_BACKOFF_INITIAL_S="5", PROCESSOR_BACKOFF_MAX_S="1")
    assert refusal(backoff).name == "PROCESSOR_BACKOFF_MAX_S"

    topics = env(PROCESSOR_RESULTS_TOPIC="cxone.jobs.requests")
    assert refusal(topics).name == "PROCESSOR_*_TOPIC"


def test_the_secret_never_shows() -> None:
    settings = load(environ=REQUIRED)

    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert SECRET not in f"{settings.cxone_client_secret}"


def test_an_invalid_secret_is_not_echoed() -> None:
    error = refusal(env(CXONE_CLIENT_SECRET="   "))

    assert error.name == "CXONE_CLIENT_SECRET"
    assert "(hidden)" in str(error)
    assert "'   '" not in str(error)


def test_a_broken_file_holding_the_secret_does_not_echo_it(tmp_path: Path) -> None:
    path = toml(tmp_path, f'CXONE_CLIENT_SECRET = "{SECRET}" junk\n')

    error = refusal({}, config_file=path)

    assert error.name == "--config"
    assert "not valid TOML" in str(error)
    assert SECRET not in str(error)


def test_kafka_variables_become_librdkafka_properties() -> None:
    settings = load(
        environ=env(
            KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            KAFKA_SESSION_TIMEOUT_MS="45000",
            KAFKA_BOOTSTRAP_SERVERS="broker:9093",
            KAFKA_AUTO_OFFSET_RESET="latest",
        )
    )

    assert settings.kafka["security.protocol"] == "SASL_SSL"
    assert settings.kafka["session.timeout.ms"] == "45000"
    assert settings.bootstrap_servers == "broker:9093"
    assert settings.kafka["auto.offset.reset"] == "latest"


def test_unrelated_environment_variables_are_ignored() -> None:
    settings = load(environ=env(HOME="/root", PROCESSOR_UNKNOWN="1"))
    assert set(settings.kafka) == {"bootstrap.servers", "auto.offset.reset"}


@pytest.mark.parametrize(
    "name",
    [
        "KAFKA_ENABLE_AUTO_COMMIT",
        "KAFKA_ENABLE_AUTO_OFFSET_STORE",
        "KAFKA_GROUP_ID",
        "KAFKA_ENABLE_IDEMPOTENCE",
    ],
)
def test_properties_the_processor_manages_are_refused(name: str) -> None:
    error = refusal(env(**{name: "true"}))
    assert str(error).startswith(f"{name} is managed")


def test_each_client_gets_only_its_own_properties() -> None:
    settings = load(
        environ=env(
            KAFKA_LINGER_MS="5",
            KAFKA_SESSION_TIMEOUT_MS="45000",
            KAFKA_SECURITY_PROTOCOL="SSL",
        )
    )

    consumer = settings.consumer_config(**{"group.id": "g"})
    producer = settings.producer_config(**{"enable.idempotence": True})

    assert "linger.ms" not in consumer
    assert consumer["session.timeout.ms"] == "45000"
    assert consumer["group.id"] == "g"
    assert "session.timeout.ms" not in producer
    assert "auto.offset.reset" not in producer
    assert producer["linger.ms"] == "5"
    assert producer["enable.idempotence"] is True
    assert consumer["security.protocol"] == producer["security.protocol"] == "SSL"


def test_a_file_with_an_unknown_key_is_refused_naming_it(tmp_path: Path) -> None:
    path = toml(tmp_path, "procesor_max_in_flight = 4\n")

    error = refusal(REQUIRED, config_file=path)

    assert str(error).startswith("procesor_max_in_flight ")
    assert "not a known setting" in str(error)


def test_a_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    error = refusal(REQUIRED, config_file=tmp_path / "missing.toml")

    assert error.name == "--config"
    assert "cannot be read" in str(error)


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = toml(tmp_path, "PROCESSOR_MAX_IN_FLIGHT = = 4\n")

    error = refusal(REQUIRED, config_file=path)

    assert error.name == "--config"
    assert "not valid TOML" in str(error)


def test_a_file_may_give_caps_as_a_table(tmp_path: Path) -> None:
    path = toml(tmp_path, '[processor_action_concurrency]\norders = 2\n"*" = 3\n')

    settings = load(environ=REQUIRED, config_file=path)

    assert settings.action_concurrency == {"orders": 2, "*": 3}


def test_cap_for_uses_the_action_cap_then_star_within_the_global_one() -> None:
    settings = load(
        environ=env(
            PROCESSOR_MAX_IN_FLIGHT="10",
            PROCESSOR_ACTION_CONCURRENCY="orders=4, big=50, *=2",
        )
    )

    assert settings.cap_for("orders") == 4
    assert settings.cap_for("big") == 10
    assert settings.cap_for("other") == 2


def test_cap_for_without_star_falls_back_to_the_global_cap() -> None:
    settings = load(
        environ=env(PROCESSOR_MAX_IN_FLIGHT="10", PROCESSOR_ACTION_CONCURRENCY="a=3")
    )

    assert settings.cap_for("a") == 3
    assert settings.cap_for("other") == 10


def test_a_librdkafka_refusal_names_the_kafka_variable() -> None:
    error = kafka_setting_error('No such configuration property: "foo.bar"')

    assert error.name == "KAFKA_FOO_BAR"
    assert str(error).startswith("KAFKA_FOO_BAR ")
    assert "foo.bar" in str(error)


def test_a_librdkafka_refusal_without_a_property_is_still_readable() -> None:
    error = kafka_setting_error("something else went wrong")

    assert error.name == "KAFKA_*"
    assert "something else went wrong" in str(error)
