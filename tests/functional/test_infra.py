"""infra/: the merge template and policies infra/build.py renders, and the packaged stages.

The first group reads only the generated files (milliseconds). The second runs `chalice package`
on the real app.py for every stage, then cfn-lint, like `make package` (a few seconds per stage;
Chalice's dependency zip is cached in .chalice/deployments, the wheels in infra/.cache/).
"""

from __future__ import annotations

import json
import re
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from chalice.config import Config

from chalicelib.platform import queues, settings
from chalicelib.store import schema

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))

import build  # noqa: E402

CONFIG = build.load_config()
STAGES = sorted(CONFIG["stages"])
CONSUMERS = [fn for fn in build.FUNCTIONS if fn.queue is not None]


def merge_template(stage: str) -> dict:
    return json.loads(build.merge_template_path(stage).read_text())


def lambda_config(stage: str, python_name: str) -> Config:
    return Config(chalice_stage=stage, function_name=python_name, config_from_disk=CONFIG)


# --- generated files ----------------------------------------------------------------------


def test_generated_files_are_up_to_date():
    stale = [str(p.relative_to(ROOT)) for p in build.stale_files()]
    assert not stale, f"run `python infra/build.py`: stale {stale}"


@pytest.mark.parametrize("stage", STAGES)
def test_table_is_schema_table_definition(stage):
    names = build.stage_settings(CONFIG, stage)
    table = merge_template(stage)["Resources"]["Table"]
    expected = schema.table_definition(names.table_name)
    props = table["Properties"]
    for key in ("TableName", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes"):
        assert props[key] == expected[key], key
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("stage", STAGES)
def test_every_queue_has_a_dead_letter_queue(stage):
    names = build.stage_settings(CONFIG, stage)
    resources = merge_template(stage)["Resources"]
    for spec in queues.ALL_QUEUES:
        queue = resources[build.queue_resource(spec)]["Properties"]
        dlq_name = build.dlq_resource(spec)
        assert queue["QueueName"] == spec.name(names)
        assert queue["VisibilityTimeout"] == spec.visibility_timeout
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_name, "Arn"]},
            "maxReceiveCount": queues.MAX_RECEIVES,
        }
        dlq = resources[dlq_name]["Properties"]
        assert dlq["QueueName"] == queues.dlq_name(spec.name(names))
        assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
        assert f"{dlq_name}Alarm" in resources


@pytest.mark.parametrize("stage", STAGES)
def test_every_consumer_reports_batch_item_failures_with_a_concurrency_cap(stage):
    resources = merge_template(stage)["Resources"]
    for fn in CONSUMERS:
        source = resources[fn.resource]["Properties"]["Events"][fn.event_source]["Properties"]
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert 2 <= source["ScalingConfig"]["MaximumConcurrency"] <= 1000


def test_the_consumers_time_budget_is_its_lambda_timeout():
    from chalicelib.platform import consumer

    for stage in STAGES:
        assert lambda_config(stage, "on_events").lambda_timeout == consumer.BATCH_SECONDS


def test_the_sends_consumers_time_budget_is_its_lambda_timeout():
    from chalicelib.broadcasts import sender

    for stage in STAGES:
        assert lambda_config(stage, "on_sends").lambda_timeout == sender.BATCH_SECONDS


@pytest.mark.parametrize("stage", STAGES)
def test_visibility_timeout_outlasts_consumer_retries(stage):
    """AWS: visibility timeout >= 6 x function timeout (+ batching window), or a throttled
    batch's messages come back while the first delivery may still be running."""
    for fn in CONSUMERS:
        timeout = lambda_config(stage, fn.python_name).lambda_timeout
        spec = fn.queue
        assert spec.visibility_timeout >= 6 * timeout + spec.batching_window, (
            f"{fn.python_name}: lambda_timeout {timeout}s in .chalice/config.json needs "
            f"queues.{spec.logical_name.upper()}.visibility_timeout >= "
            f"{6 * timeout + spec.batching_window}s (is {spec.visibility_timeout}s)"
        )


def test_callback_handler_answers_well_within_wecoms_5_seconds():
    for stage in STAGES:
        api = lambda_config(stage, "api_handler")
        assert api.lambda_timeout <= 10 and 128 <= api.lambda_memory_size <= 256


@pytest.mark.parametrize("stage", STAGES)
def test_functions_that_call_wecom_leave_through_the_fixed_egress_ip(stage):
    template = merge_template(stage)
    resources = template["Resources"]
    condition = template["Conditions"][build.FIXED_EGRESS_CONDITION]
    assert condition == {"Fn::Equals": [{"Ref": "FixedEgressIp"}, "true"]}
    default = template["Parameters"]["FixedEgressIp"]["Default"]
    assert default == ("true" if build.STAGES[stage].fixed_egress_ip else "false")
    for name in ("EgressIp", "EgressNatGateway", "PrivateSubnetA", "PrivateSubnetB"):
        assert resources[name]["Condition"] == build.FIXED_EGRESS_CONDITION
    nat = resources["EgressNatGateway"]["Properties"]
    assert nat["AllocationId"] == {"Fn::GetAtt": ["EgressIp", "AllocationId"]}
    assert template["Outputs"]["EgressIp"] == {
        "Condition": build.FIXED_EGRESS_CONDITION,
        "Description": template["Outputs"]["EgressIp"]["Description"],
        "Value": {"Ref": "EgressIp"},
    }
    callers = {fn.resource for fn in build.FUNCTIONS if fn.calls_wecom}
    # The operator API calls WeCom synchronously (channel codes, tags), so it needs the fixed IP too.
    assert callers == {"APIHandler", "OnEvents", "OnSync", "OnSends", "TickMinute", "TickDaily"}
    for fn in build.FUNCTIONS:
        vpc = resources[fn.resource]["Properties"].get("VpcConfig")
        if fn.calls_wecom:
            assert vpc["Fn::If"][0] == build.FIXED_EGRESS_CONDITION
            assert vpc["Fn::If"][2] == {"Ref": "AWS::NoValue"}
            assert resources[fn.role]["Properties"]["ManagedPolicyArns"]["Fn::If"][0] == (
                build.FIXED_EGRESS_CONDITION
            )
        else:
            assert vpc is None, f"{fn.resource} needs no egress"
    assert build.STAGES["prod"].fixed_egress_ip and not build.STAGES["dev"].fixed_egress_ip


@pytest.mark.parametrize("stage", STAGES)
def test_functions_get_names_from_the_stack_and_the_stage(stage):
    names = build.stage_settings(CONFIG, stage)
    template = merge_template(stage)
    resources = template["Resources"]
    env = resources["OnEvents"]["Properties"]["Environment"]["Variables"]
    assert env[settings.TABLE_NAME] == {"Ref": "Table"}
    assert env[settings.EVENTS_QUEUE] == {"Fn::GetAtt": ["EventsQueue", "QueueName"]}
    assert env[f"{settings.EVENTS_QUEUE}_URL"] == {"Ref": "EventsQueue"}  # a queue's Ref is its URL
    assert env[settings.KMS_KEY_ID] == {"Ref": "SecretsKeyAlias"}
    assert resources["SecretsKeyAlias"]["Properties"]["AliasName"] == names.kms_key_id
    assert resources["SecretsKey"]["Properties"]["EnableKeyRotation"] is True
    assert resources["SecretsKey"]["DeletionPolicy"] == "Retain"
    assert template["Outputs"]["AdminKeyParameter"]["Value"] == names.admin_key_parameter
    for name in (
        settings.TABLE_NAME,
        settings.EVENTS_QUEUE,
        settings.SENDS_QUEUE,
        settings.SYNC_QUEUE,
        settings.KMS_KEY_ID,
        settings.ADMIN_KEY_PARAMETER,
    ):
        assert stage in build.stage_env(CONFIG, stage)[name], f"{name} not per stage"


def _arn(resource) -> str:
    """A policy Resource as text: policy files hold {"Fn::Sub": "arn:${AWS::Partition}:..."}."""
    assert isinstance(resource, dict) and set(resource) == {"Fn::Sub"}, resource
    return resource["Fn::Sub"]


def _statements(stage: str, kind: str) -> dict[str, dict]:
    document = json.loads(build.policy_path(stage, kind).read_text())
    return {s["Sid"]: s for s in document["Statement"]}


@pytest.mark.parametrize("stage", STAGES)
def test_policies_are_least_privilege(stage):
    names = build.stage_settings(CONFIG, stage)
    for fn in build.FUNCTIONS:
        config = lambda_config(stage, fn.python_name)
        assert config.autogen_policy is False
        path = ROOT / ".chalice" / config.iam_policy_file
        assert path.resolve() == build.policy_path(stage, fn.role_kind).resolve()
    for kind in ("api", "worker"):
        statements = _statements(stage, kind)
        for statement in statements.values():
            assert statement["Effect"] == "Allow"
            assert all(":*" not in action and action != "*" for action in statement["Action"])
            resources = statement["Resource"]
            for arn in [resources] if isinstance(resources, dict) else resources:
                assert _arn(arn).startswith("arn:${AWS::Partition}:") and _arn(arn) != "*"
        assert _arn(statements["Table"]["Resource"][0]).endswith(f":table/{names.table_name}")
        assert statements["SecretsKey"]["Condition"] == {
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": [names.kms_key_id]}
        }
        assert len(statements["SendToQueues"]["Resource"]) == len(queues.ALL_QUEUES)
    api, worker = _statements(stage, "api"), _statements(stage, "worker")
    assert "ConsumeQueues" not in api and "AdminKey" not in worker
    assert _arn(api["AdminKey"]["Resource"]).endswith(f":parameter{names.admin_key_parameter}")


# --- partitions: one template for the global regions and AWS China (aws-cn) ------------------

# The local stack imitates Lambda's event payloads for moto, which runs in us-east-1 (never deployed).
HARD_CODED_PARTITION_ALLOWED = {"infra/local_stack.py"}
HARD_CODED_PARTITION = re.compile(r"arn:aws:")


def test_the_china_stage_is_regional_in_beijing():
    """API Gateway in AWS China offers no edge-optimized endpoints."""
    assert build.STAGES["cn"].region == "cn-north-1" and build.partition("cn-north-1") == "aws-cn"
    assert build.endpoint_type(CONFIG, "cn") == "REGIONAL"
    for stage in STAGES:
        assert build.endpoint_type(CONFIG, stage) in {"EDGE", "REGIONAL", "PRIVATE"}
        if build.partition(build.STAGES[stage].region) == "aws-cn":
            assert build.endpoint_type(CONFIG, stage) != "EDGE", stage


@pytest.mark.parametrize("endpoint", ["EDGE", "edge"])
def test_build_refuses_an_endpoint_type_the_stages_region_lacks(endpoint):
    config = json.loads(json.dumps(CONFIG))
    config["stages"]["cn"]["api_gateway_endpoint_type"] = endpoint
    with pytest.raises(SystemExit, match="api_gateway_endpoint_type"):
        build.render(config)


def test_package_targets_the_stages_own_region(monkeypatch):
    import package

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert package.region("cn") == "cn-north-1"  # pinned: the environment cannot move it
    assert package.region("prod") == "eu-west-1"  # global stages: wherever the deployer points


def _infra_files() -> list[Path]:
    return sorted(
        p
        for p in (ROOT / "infra").rglob("*")
        if p.is_file() and p.suffix in {".py", ".json", ".sh"} and not {"out", ".cache"} & set(p.parts)
    )


def test_no_arn_in_infra_hard_codes_the_partition():
    """`arn:aws:` is wrong in AWS China (aws-cn): ARNs take ${AWS::Partition}."""
    files = _infra_files() + [ROOT / ".chalice" / "config.json"]
    assert any(p.name == "build.py" for p in files) and any(p.parent.name == "policies" for p in files)
    offenders = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in files
        if str(p.relative_to(ROOT)) not in HARD_CODED_PARTITION_ALLOWED
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if HARD_CODED_PARTITION.search(line)
    ]
    assert not offenders, "use arn:${AWS::Partition}: (Fn::Sub)\n" + "\n".join(offenders)
    # What build.py renders now, not only what is committed.
    rendered = [str(path.relative_to(ROOT)) for path, text in build.render().items() if "arn:aws:" in text]
    assert not rendered, rendered


# --- API Gateway's own answers, in the product's error envelope ----------------------------

# API Gateway's response types (API reference, GatewayResponse.responseType).
GATEWAY_RESPONSE_TYPES = {
    "DEFAULT_4XX", "DEFAULT_5XX", "RESOURCE_NOT_FOUND", "UNAUTHORIZED", "INVALID_API_KEY", "ACCESS_DENIED",
    "AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR", "INVALID_SIGNATURE", "EXPIRED_TOKEN",
    "MISSING_AUTHENTICATION_TOKEN", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT", "API_CONFIGURATION_ERROR",
    "UNSUPPORTED_MEDIA_TYPE", "BAD_REQUEST_PARAMETERS", "BAD_REQUEST_BODY", "REQUEST_TOO_LARGE", "THROTTLED",
    "QUOTA_EXCEEDED", "WAF_FILTERED",
}


def render_gateway_template(template: str, response_type: str, message: str) -> dict:
    """What API Gateway sends: its $context variables substituted, messageString quoted."""
    rendered = template.replace("$context.error.responseType", response_type)
    rendered = rendered.replace("$context.error.messageString", json.dumps(message))
    assert "$" not in rendered, rendered
    return json.loads(rendered)


@pytest.mark.parametrize("stage", STAGES)
def test_api_gateway_answers_in_the_error_envelope(stage):
    from chalicelib.api.core import ErrorResponse

    responses = merge_template(stage)["Resources"][build.REST_API]["Properties"]["GatewayResponses"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "MISSING_AUTHENTICATION_TOKEN"} <= set(responses) <= GATEWAY_RESPONSE_TYPES
    for response_type, response in responses.items():
        assert set(response) <= {"StatusCode", "ResponseTemplates", "ResponseParameters"}, response_type  # SAM's
        assert re.fullmatch(r"[45]\d\d", response.get("StatusCode", "400")), response_type
        assert set(response["ResponseTemplates"]) == {"application/json"}
        for as_sent in ("THROTTLED", "INTEGRATION_TIMEOUT"):
            body = render_gateway_template(response["ResponseTemplates"]["application/json"], as_sent,
                                           'Too "many" \\ requests')
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
            ErrorResponse.model_validate(body)
    default = render_gateway_template(responses["DEFAULT_4XX"]["ResponseTemplates"]["application/json"],
                                      "THROTTLED", 'Too "many" requests')
    assert default == {"error": {"code": "THROTTLED", "message": 'Too "many" requests'}}
    assert responses["DEFAULT_5XX"] == responses["DEFAULT_4XX"]
    # An unknown path or method: API Gateway's 403 "Missing Authentication Token" becomes a 404.
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["StatusCode"] == "404"
    body = render_gateway_template(missing["ResponseTemplates"]["application/json"], "MISSING_AUTHENTICATION_TOKEN",
                                   "Missing Authentication Token")
    assert body["error"]["code"] == "not_found"


# --- packaged stages (chalice package + merge + .pyc + cfn-lint) ----------------------------


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    if not (ROOT / "app.py").exists():
        pytest.skip("app.py does not exist yet: nothing for chalice package to build")
    import package

    wheelhouse = package.ensure_wheelhouse(ROOT, package.DEFAULT_WHEELHOUSE)
    out = tmp_path_factory.mktemp("packaged")
    results = {}
    for stage in STAGES:
        outdir = out / stage
        template = package.chalice_package(stage, outdir, wheelhouse=wheelhouse)
        skipped = package.merge(template, merge_template(stage))
        pycs = package.compile_zip(outdir / "deployment.zip")
        results[stage] = (template, skipped, pycs)
    return results


@pytest.mark.parametrize("stage", STAGES)
def test_packaged_template_lints_clean(packaged, stage):
    import package

    template, skipped, _ = packaged[stage]
    errors, lint_warnings = package.lint(template, [package.region(stage)])  # cn: cn-north-1's spec
    assert not errors, "\n".join(errors)
    if lint_warnings:
        print("cfn-lint warnings:\n" + "\n".join(lint_warnings))
    if skipped:
        warnings.warn(f"app.py lacks {skipped}: packaged without their overrides", stacklevel=1)


@pytest.mark.parametrize("stage", STAGES)
def test_packaged_template_matches_queue_specs_and_merge(packaged, stage):
    import package

    template_path, _, _ = packaged[stage]
    template = json.loads(template_path.read_text())
    assert package.template_problems(template, stage) == []
    resources = template["Resources"]
    for fn in CONSUMERS:
        if fn.resource in resources:
            source = resources[fn.resource]["Properties"]["Events"][fn.event_source]
            assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # The API handler calls WeCom (channel codes, tags): inside the VPC when the fixed IP is on.
    assert resources["APIHandler"]["Properties"]["VpcConfig"]["Fn::If"][0] == build.FIXED_EGRESS_CONDITION
    assert resources["Table"]["Type"] == "AWS::DynamoDB::Table"
    for fn in build.FUNCTIONS:  # every deployed function logs one JSON object per record
        if fn.resource in resources:
            assert resources[fn.resource]["Properties"]["LoggingConfig"]["LogFormat"] == "JSON", fn


@pytest.mark.parametrize("stage", STAGES)
def test_packaged_rest_api_carries_the_gateway_responses(packaged, stage):
    """SAM writes GatewayResponses into the API's inline OpenAPI body, so each deployment has them."""
    template_path, _, _ = packaged[stage]
    api = json.loads(template_path.read_text())["Resources"][build.REST_API]
    assert api["Type"] == "AWS::Serverless::Api"
    assert "DefinitionBody" in api["Properties"]  # SAM's GatewayResponses need the body inline
    assert api["Properties"]["GatewayResponses"] == build.gateway_responses()
    resources = json.loads(template_path.read_text())["Resources"].values()
    assert not [r for r in resources if r["Type"] == "AWS::ApiGateway::GatewayResponse"]


@pytest.mark.parametrize("stage", STAGES)
def test_packaged_api_has_the_stages_endpoint_type(packaged, stage):
    template_path, _, _ = packaged[stage]
    api = json.loads(template_path.read_text())["Resources"][build.REST_API]["Properties"]
    assert api["EndpointConfiguration"] == build.endpoint_type(CONFIG, stage)


@pytest.mark.parametrize("stage", STAGES)
def test_packaged_template_hard_codes_no_partition(packaged, stage):
    """Chalice's own ARNs, the merge template's and the policy files' all take ${AWS::Partition}."""
    template_path, _, _ = packaged[stage]
    text = template_path.read_text()
    assert "arn:${AWS::Partition}:" in text
    lines = [line.strip() for line in text.splitlines() if HARD_CODED_PARTITION.search(line)]
    assert not lines, lines


@pytest.mark.parametrize("stage", STAGES)
def test_packaged_zip_ships_bytecode(packaged, stage):
    template_path, _, pycs = packaged[stage]
    with zipfile.ZipFile(template_path.parent / "deployment.zip") as zf:
        names = set(zf.namelist())
    modules = [n for n in names if n.startswith("chalicelib/") and n.endswith(".py")]
    assert modules
    for module in modules + ["app.py"]:
        folder, _, filename = module.rpartition("/")
        prefix = f"{folder}/" if folder else ""
        pyc = f"{prefix}__pycache__/{filename[:-3]}.{sys.implementation.cache_tag}.pyc"
        assert pyc in names, f"{pyc} missing"
    assert set(pycs) <= names


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("pages", ["console", "toolbar"])
def test_packaged_zip_ships_the_console(packaged, stage, pages):
    """/console and /toolbar serve chalicelib/<pages>/static from the Lambda's own files: every one of them is
    packaged."""
    template_path, _, _ = packaged[stage]
    with zipfile.ZipFile(template_path.parent / "deployment.zip") as zf:
        names = set(zf.namelist())
    static = ROOT / "chalicelib" / pages / "static"
    files = [f"chalicelib/{pages}/static/{p.name}" for p in static.iterdir() if p.is_file()]
    assert f"chalicelib/{pages}/static/index.html" in files
    assert set(files) <= names, sorted(set(files) - names)
