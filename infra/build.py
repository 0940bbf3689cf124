"""Render the AWS side of a stage: the merge template and the IAM policies Chalice attaches.

    python infra/build.py            # (re)write every stage's files
    python infra/build.py --check    # exit 1 if a committed file is stale (CI, tests)

Chalice builds the functions, their roles, the API and the event sources (`chalice package`), but
never creates a table, a queue or a key, and cannot set `FunctionResponseTypes` or a VPC from a
CloudFormation condition. `infra/merge-<stage>.json` adds all of that and is deep-merged into
Chalice's SAM template by `chalice package --merge-template` (docs/chalice-notes.md, section 3).

It also makes API Gateway answer in the product's error envelope where it answers itself (no
route for the path or method, throttling, the function failing): `gateway_responses`.

Single sources, so nothing here can drift:
- names: the stage's `environment_variables` in .chalice/config.json, read through
  `chalicelib.platform.settings.Settings` (the same code the functions run);
- the table: `chalicelib.store.schema.table_definition`;
- the queues: `chalicelib.platform.queues.ALL_QUEUES`, `dlq_name`, `MAX_RECEIVES`.
What is only infrastructure (concurrency caps, fixed egress, log retention, a pinned region) is in
`STAGES` below; the API's endpoint type is Chalice's `api_gateway_endpoint_type` in config.json.

The generated files are committed so reviews show infrastructure changes as diffs;
tests/functional/test_infra.py fails when one is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalicelib.platform import queues, settings  # noqa: E402
from chalicelib.platform.queues import QueueSpec  # noqa: E402
from chalicelib.platform.settings import Settings  # noqa: E402
from chalicelib.store import schema  # noqa: E402

CONFIG_PATH = ROOT / ".chalice" / "config.json"
INFRA = ROOT / "infra"
POLICY_DIR = INFRA / "policies"
# Partitions whose regions offer no edge-optimized API Gateway endpoints (AWS China: Beijing and
# Ningxia). Every ARN in infra/ takes its partition from ${AWS::Partition}, so one template serves
# both; only the endpoint type and the region differ per stage.
NO_EDGE_PARTITIONS = ("aws-cn",)
FIXED_EGRESS_CONDITION = "UseFixedEgressIp"
VPC_CIDR = "10.42.0.0/16"


@dataclass(frozen=True)
class StageOptions:
    fixed_egress_ip: bool  # default of the FixedEgressIp parameter (NAT gateway ~USD 35/month)
    max_concurrency: dict[str, int]  # queue logical name -> ScalingConfig.MaximumConcurrency
    log_retention_days: int
    table_deletion_protection: bool
    # The one region the stage deploys to (package.py packages and lints for it, deploy.sh deploys
    # there); None: any region of the global partition, from AWS_REGION / AWS_DEFAULT_REGION.
    region: str | None = None


# MaximumConcurrency (2..1000) caps pollers per queue without the throttling -> receive count ->
# DLQ trap of reserved concurrency. `sends` is the fan-out that WeCom's 10,000 calls/min/API/corp
# limit bounds; `events` carries welcomes (~160/s/corp at most).
STAGES: dict[str, StageOptions] = {
    "dev": StageOptions(
        fixed_egress_ip=False,
        max_concurrency={"events": 2, "sends": 2, "sync": 2},
        log_retention_days=7,
        table_deletion_protection=False,
    ),
    "prod": StageOptions(
        fixed_egress_ip=True,
        max_concurrency={"events": 20, "sends": 10, "sync": 4},
        log_retention_days=30,
        table_deletion_protection=True,
    ),
    # Production in AWS China (Beijing): its own partition (aws-cn) and accounts; API Gateway
    # offers no edge-optimized endpoints there, so .chalice/config.json makes its API REGIONAL.
    "cn": StageOptions(
        fixed_egress_ip=True,
        max_concurrency={"events": 20, "sends": 10, "sync": 4},
        log_retention_days=30,
        table_deletion_protection=True,
        region="cn-north-1",
    ),
}


def partition(region: str | None) -> str:
    """The partition of a region (None: the global one). Only China's differs among the regions
    this project targets; GovCloud and the ISO partitions are not handled."""
    return "aws-cn" if region is not None and region.startswith("cn-") else "aws"


def endpoint_type(config: dict[str, Any], stage: str) -> str:
    """The stage's API Gateway endpoint type, as Chalice reads it (stage, then top level)."""
    return config["stages"][stage].get(
        "api_gateway_endpoint_type", config.get("api_gateway_endpoint_type", "EDGE")
    )


def check_stage(config: dict[str, Any], stage: str) -> None:
    """What a stage's region allows: no EDGE API where the partition offers none."""
    region = STAGES[stage].region
    kind = endpoint_type(config, stage)
    if kind not in ("EDGE", "REGIONAL", "PRIVATE"):
        raise SystemExit(f"stage {stage!r}: api_gateway_endpoint_type {kind!r} is not EDGE, REGIONAL or PRIVATE")
    if kind == "EDGE" and partition(region) in NO_EDGE_PARTITIONS:
        raise SystemExit(
            f"stage {stage!r} deploys to {region}, which has no edge-optimized APIs: set "
            f'"api_gateway_endpoint_type": "REGIONAL" for it in .chalice/config.json'
        )


@dataclass(frozen=True)
class Function:
    """One Lambda function Chalice generates (keyed by its Python name in app.py)."""

    python_name: str
    calls_wecom: bool  # needs the fixed egress IP (WeCom errcode 60020 otherwise)
    queue: QueueSpec | None = None  # the queue it consumes

    @property
    def resource(self) -> str:
        if self.python_name == "api_handler":
            return "APIHandler"  # Chalice renames the API handler's resource
        return _camel(self.python_name)

    @property
    def role(self) -> str:
        return _camel(f"{self.python_name}_role")  # e.g. ApiHandlerRole, OnEventsRole

    @property
    def event_source(self) -> str:
        return f"{self.resource}SqsEventSource"

    @property
    def role_kind(self) -> str:
        return "api" if self.python_name == "api_handler" else "worker"


# Every function in the packaged template must be listed here (a test checks); a new handler
# that calls WeCom must say so, or it leaves AWS from an address WeCom refuses.
FUNCTIONS = (
    Function("api_handler", calls_wecom=True),  # the operator API calls WeCom (channel codes, tags)
    Function("on_events", calls_wecom=True, queue=queues.EVENTS),
    Function("on_sync", calls_wecom=True, queue=queues.SYNC),
    Function("on_sends", calls_wecom=True, queue=queues.SENDS),
    Function("tick_minute", calls_wecom=True),
    Function("tick_daily", calls_wecom=True),
)


# The REST API in Chalice's packaged template: an AWS::Serverless::Api with its OpenAPI body inline.
REST_API = "RestAPI"


def _envelope(code: str, message: str) -> str:
    """The error envelope as an API Gateway response template. `code` and `message` are JSON
    values already: a literal, or $context.error.messageString (API Gateway quotes that one).
    Gateway response templates are not run through VTL: $context variables are all there is."""
    return f'{{"error": {{"code": {code}, "message": {message}}}}}'


def gateway_responses() -> dict[str, Any]:
    """What API Gateway answers by itself, in `{"error": {"code", "message"}}` like the functions.

    As SAM's `GatewayResponses` of the API, not AWS::ApiGateway::GatewayResponse resources: SAM
    writes them into the API's OpenAPI body (x-amazon-apigateway-gateway-responses), so each
    deployment carries them. Separate resources are dropped from the API the next time
    CloudFormation puts the body of a Serverless::Api (aws/serverless-application-model#390, #623).
    """
    from_gateway = _envelope('"$context.error.responseType"', "$context.error.messageString")
    return {
        # Any other 4XX/5XX of API Gateway's own: THROTTLED, ACCESS_DENIED, INTEGRATION_TIMEOUT, ...
        "DEFAULT_4XX": {"ResponseTemplates": {"application/json": from_gateway}},
        "DEFAULT_5XX": {"ResponseTemplates": {"application/json": from_gateway}},
        # No resource for the path, or no such method on it: 403 "Missing Authentication Token" (with
        # our `Authorization: Bearer` header, "Authorization header requires 'Credential'...", which
        # quotes the header, i.e. the caller's key). A fixed 404 message echoes nothing.
        "MISSING_AUTHENTICATION_TOKEN": {
            "StatusCode": "404",
            "ResponseTemplates": {
                "application/json": _envelope('"not_found"', '"no such path, or no such method on this path"')
            },
        },
        # Over API Gateway's payload limit: the functions' own code for a body over theirs.
        "REQUEST_TOO_LARGE": {
            "StatusCode": "413",
            "ResponseTemplates": {"application/json": _envelope('"body_too_large"', "$context.error.messageString")},
        },
    }


def _camel(name: str) -> str:
    """chalice.utils.to_cfn_resource_name, without importing Chalice."""
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


def load_config() -> dict[str, Any]:
    return json.loads(CONFIG_PATH.read_text())


def stage_env(config: dict[str, Any], stage: str) -> dict[str, str]:
    return {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }


def stage_settings(config: dict[str, Any], stage: str) -> Settings:
    env = stage_env(config, stage)
    required = (
        settings.TABLE_NAME,
        settings.EVENTS_QUEUE,
        settings.SENDS_QUEUE,
        settings.SYNC_QUEUE,
        settings.KMS_KEY_ID,
        settings.ADMIN_KEY_PARAMETER,
    )
    missing = [name for name in required if not env.get(name)]
    if missing:
        raise SystemExit(f"stage {stage!r}: set {', '.join(missing)} in .chalice/config.json")
    return Settings.from_env(env)


def queue_env_var(spec: QueueSpec) -> str:
    return getattr(settings, f"{spec.logical_name.upper()}_QUEUE")


def queue_resource(spec: QueueSpec) -> str:
    return f"{_camel(spec.logical_name)}Queue"


def dlq_resource(spec: QueueSpec) -> str:
    return f"{_camel(spec.logical_name)}DeadLetterQueue"


def function_name(app_name: str, stage: str, fn: Function) -> str:
    return f"{app_name}-{stage}-{fn.python_name}"  # what `chalice deploy` would name it


# --- the merge template -------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def _arn(resource: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, "Arn"]}


def _if_egress(value: Any) -> dict[str, Any]:
    return {"Fn::If": [FIXED_EGRESS_CONDITION, value, _ref("AWS::NoValue")]}


def table_resource(name: str, options: StageOptions) -> dict[str, Any]:
    definition = dict(schema.table_definition(name))
    known = {"TableName", "BillingMode", "AttributeDefinitions", "KeySchema"}
    known |= {"GlobalSecondaryIndexes"}
    unknown = set(definition) - known
    if unknown:  # CreateTable and CloudFormation spell some options differently: map them here
        raise SystemExit(f"infra/build.py does not map table_definition keys {sorted(unknown)}")
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            **definition,
            "TimeToLiveSpecification": {"AttributeName": schema.TTL_ATTRIBUTE, "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "DeletionProtectionEnabled": options.table_deletion_protection,
        },
    }


def queue_resources(spec: QueueSpec, name: str) -> dict[str, Any]:
    dlq = dlq_resource(spec)
    source_arn = {"Fn::Sub": f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{name}"}
    return {
        dlq: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queues.dlq_name(name),
                "MessageRetentionPeriod": 1209600,  # 14 days (max): time to look and redrive
                "SqsManagedSseEnabled": True,
                "RedriveAllowPolicy": {
                    "redrivePermission": "byQueue",
                    "sourceQueueArns": [source_arn],
                },
            },
        },
        queue_resource(spec): {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": name,
                "VisibilityTimeout": spec.visibility_timeout,
                "SqsManagedSseEnabled": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": _arn(dlq),
                    "maxReceiveCount": queues.MAX_RECEIVES,
                },
            },
        },
        f"{dlq}Alarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": f"Messages in {queues.dlq_name(name)}: inspect, fix, redrive.",
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}],
                "Statistic": "Maximum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": {"Fn::If": ["HasAlarmTopic", [_ref("AlarmTopicArn")], _ref("AWS::NoValue")]},
            },
        },
    }


def secrets_key_resources(alias: str) -> dict[str, Any]:
    if not alias.startswith("alias/"):
        raise SystemExit(f"{settings.KMS_KEY_ID} must be an alias (alias/...), got {alias!r}")
    return {
        "SecretsKey": {
            "Type": "AWS::KMS::Key",
            "DeletionPolicy": "Retain",  # losing it loses every corp's sealed secrets
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "Description": "SCRM corp secrets (envelope encryption, chalicelib/platform/sealing.py)",
                "EnableKeyRotation": True,
                "KeyPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AccountAdministersKeyAndIamPoliciesGrantUse",
                            "Effect": "Allow",
                            "Principal": {
                                "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
                            },
                            "Action": "kms:*",
                            "Resource": "*",
                        }
                    ],
                },
            },
        },
        "SecretsKeyAlias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": alias, "TargetKeyId": _ref("SecretsKey")},
        },
    }


def egress_resources() -> dict[str, Any]:
    """VPC whose private subnets leave through one NAT gateway with one Elastic IP."""
    az = [{"Fn::Select": [i, {"Fn::GetAZs": ""}]} for i in (0, 1)]
    res: dict[str, Any] = {
        "EgressVpc": {
            "Type": "AWS::EC2::VPC",
            "Properties": {
                "CidrBlock": VPC_CIDR,
                "EnableDnsSupport": True,
                "EnableDnsHostnames": True,
                "Tags": [{"Key": "Name", "Value": {"Fn::Sub": "${AWS::StackName}-egress"}}],
            },
        },
        "EgressInternetGateway": {"Type": "AWS::EC2::InternetGateway", "Properties": {}},
        "EgressGatewayAttachment": {
            "Type": "AWS::EC2::VPCGatewayAttachment",
            "Properties": {
                "VpcId": _ref("EgressVpc"),
                "InternetGatewayId": _ref("EgressInternetGateway"),
            },
        },
        "PublicSubnet": {
            "Type": "AWS::EC2::Subnet",
            "Properties": {
                "VpcId": _ref("EgressVpc"),
                "CidrBlock": "10.42.0.0/24",
                "AvailabilityZone": az[0],
            },
        },
        "PublicRouteTable": {
            "Type": "AWS::EC2::RouteTable",
            "Properties": {"VpcId": _ref("EgressVpc")},
        },
        "PublicDefaultRoute": {
            "Type": "AWS::EC2::Route",
            "DependsOn": "EgressGatewayAttachment",
            "Properties": {
                "RouteTableId": _ref("PublicRouteTable"),
                "DestinationCidrBlock": "0.0.0.0/0",
                "GatewayId": _ref("EgressInternetGateway"),
            },
        },
        "PublicSubnetRoutes": {
            "Type": "AWS::EC2::SubnetRouteTableAssociation",
            "Properties": {
                "SubnetId": _ref("PublicSubnet"),
                "RouteTableId": _ref("PublicRouteTable"),
            },
        },
        "EgressIp": {
            "Type": "AWS::EC2::EIP",
            "DependsOn": "EgressGatewayAttachment",
            "Properties": {"Domain": "vpc"},
        },
        "EgressNatGateway": {
            "Type": "AWS::EC2::NatGateway",
            "Properties": {
                "AllocationId": {"Fn::GetAtt": ["EgressIp", "AllocationId"]},
                "SubnetId": _ref("PublicSubnet"),
            },
        },
        "PrivateRouteTable": {
            "Type": "AWS::EC2::RouteTable",
            "Properties": {"VpcId": _ref("EgressVpc")},
        },
        "PrivateDefaultRoute": {
            "Type": "AWS::EC2::Route",
            "Properties": {
                "RouteTableId": _ref("PrivateRouteTable"),
                "DestinationCidrBlock": "0.0.0.0/0",
                "NatGatewayId": _ref("EgressNatGateway"),
            },
        },
        # DynamoDB through a (free) gateway endpoint instead of paying NAT processing per byte.
        "DynamoDbEndpoint": {
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "VpcId": _ref("EgressVpc"),
                "VpcEndpointType": "Gateway",
                "ServiceName": {"Fn::Sub": "com.amazonaws.${AWS::Region}.dynamodb"},
                "RouteTableIds": [_ref("PrivateRouteTable")],
            },
        },
        "LambdaSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "SCRM functions: HTTPS out (WeCom, AWS APIs), nothing in",
                "VpcId": _ref("EgressVpc"),
                "SecurityGroupEgress": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 443,
                        "ToPort": 443,
                        "CidrIp": "0.0.0.0/0",
                        "Description": "HTTPS",
                    }
                ],
            },
        },
    }
    for suffix, cidr, zone in (("A", "10.42.10.0/24", az[0]), ("B", "10.42.11.0/24", az[1])):
        res[f"PrivateSubnet{suffix}"] = {
            "Type": "AWS::EC2::Subnet",
            "Properties": {"VpcId": _ref("EgressVpc"), "CidrBlock": cidr, "AvailabilityZone": zone},
        }
        res[f"PrivateSubnet{suffix}Routes"] = {
            "Type": "AWS::EC2::SubnetRouteTableAssociation",
            "Properties": {
                "SubnetId": _ref(f"PrivateSubnet{suffix}"),
                "RouteTableId": _ref("PrivateRouteTable"),
            },
        }
    for resource in res.values():
        resource["Condition"] = FIXED_EGRESS_CONDITION
    return res


def function_overrides(
    fn: Function, app_name: str, stage: str, options: StageOptions, env: dict[str, Any]
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "FunctionName": function_name(app_name, stage, fn),
        "Environment": {"Variables": env},
        # Lambda writes each log record as one JSON object (level, message, request id, and the
        # `extra=` fields such as corp_id): searchable in CloudWatch Logs Insights, at no import cost
        # (aws-lambda-powertools' logger would add ~100 ms to every cold start).
        "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"},
    }
    if fn.calls_wecom:
        props["VpcConfig"] = _if_egress(
            {
                "SubnetIds": [_ref("PrivateSubnetA"), _ref("PrivateSubnetB")],
                "SecurityGroupIds": [_ref("LambdaSecurityGroup")],
            }
        )
    if fn.queue is not None:
        # Not "Queue": a deep merge cannot swap Chalice's Fn::Sub for a GetAtt (it would keep
        # both keys). Chalice's ARN is right when app.py sees the stage's environment, which
        # package.py provides and checks; the GetAtt in the environment orders queue -> function.
        props["Events"] = {
            fn.event_source: {
                "Properties": {
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    "ScalingConfig": {"MaximumConcurrency": options.max_concurrency[fn.queue.logical_name]},
                }
            }
        }
    return {"Properties": props}


def merge_template(config: dict[str, Any], stage: str) -> dict[str, Any]:
    options = STAGES[stage]
    app_name = config["app_name"]
    names = stage_settings(config, stage)
    assert names.admin_key_parameter is not None  # checked by stage_settings

    resources: dict[str, Any] = {"Table": table_resource(names.table_name, options)}
    for spec in queues.ALL_QUEUES:
        resources.update(queue_resources(spec, spec.name(names)))
    resources.update(secrets_key_resources(names.kms_key_id))
    resources.update(egress_resources())
    resources[REST_API] = {"Properties": {"GatewayResponses": gateway_responses()}}

    # Ref/GetAtt (same values as config.json) so CloudFormation creates them before the functions.
    env: dict[str, Any] = {
        settings.TABLE_NAME: _ref("Table"),
        settings.KMS_KEY_ID: _ref("SecretsKeyAlias"),
    }
    for spec in queues.ALL_QUEUES:
        env[queue_env_var(spec)] = {"Fn::GetAtt": [queue_resource(spec), "QueueName"]}
        env[f"{queue_env_var(spec)}_URL"] = _ref(queue_resource(spec))  # Ref of a queue is its URL

    for fn in FUNCTIONS:
        resources[fn.resource] = function_overrides(fn, app_name, stage, options, env)
        resources[f"{fn.resource}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": f"/aws/lambda/{function_name(app_name, stage, fn)}",
                "RetentionInDays": options.log_retention_days,
            },
        }
        if fn.calls_wecom:  # ENI permissions, only while the functions are in the VPC
            resources[fn.role] = {
                "Properties": {
                    "ManagedPolicyArns": _if_egress(
                        [
                            {
                                "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                                "AWSLambdaVPCAccessExecutionRole"
                            }
                        ]
                    )
                }
            }

    outputs: dict[str, Any] = {
        "EgressIp": {
            "Condition": FIXED_EGRESS_CONDITION,
            "Description": "Add to every corp app's trusted IPs in WeCom (errcode 60020 otherwise)",
            "Value": _ref("EgressIp"),
        },
        "TableName": {"Value": _ref("Table")},
        "SecretsKeyAlias": {"Value": _ref("SecretsKeyAlias")},
        "AdminKeyParameter": {
            "Description": "SSM parameter holding the admin API key (infra/deploy.sh creates it)",
            "Value": names.admin_key_parameter,
        },
    }
    for spec in queues.ALL_QUEUES:
        label = _camel(spec.logical_name)
        outputs[f"{label}QueueUrl"] = {"Value": _ref(queue_resource(spec))}
        outputs[f"{label}DeadLetterQueueUrl"] = {"Value": _ref(dlq_resource(spec))}

    return {
        "Description": f"SCRM ({app_name}) stage {stage}: generated by infra/build.py",
        "Parameters": {
            "FixedEgressIp": {
                "Type": "String",
                "AllowedValues": ["true", "false"],
                "Default": "true" if options.fixed_egress_ip else "false",
                "Description": "Put the functions that call WeCom behind a NAT gateway with one "
                "Elastic IP (output EgressIp) for WeCom's trusted-IP list",
            },
            "AlarmTopicArn": {
                "Type": "String",
                "Default": "",
                "Description": "Optional SNS topic for dead-letter-queue alarms",
            },
        },
        "Conditions": {
            FIXED_EGRESS_CONDITION: {"Fn::Equals": [_ref("FixedEgressIp"), "true"]},
            "HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [_ref("AlarmTopicArn"), ""]}]},
        },
        "Resources": resources,
        "Outputs": outputs,
    }


# --- IAM policies (Chalice's iam_policy_file) -----------------------------------------------


def _region_arn(service: str, resource: str) -> dict[str, str]:
    """An ARN in the stack's partition. Chalice copies the policy file verbatim into the role's
    PolicyDocument, so CloudFormation resolves the Fn::Sub (`chalice deploy`, which would send it
    to IAM as-is, is not how this project deploys: infra/deploy.sh)."""
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:*:*:{resource}"}


def policy(config: dict[str, Any], stage: str, kind: str) -> dict[str, Any]:
    """Least privilege for one role kind: "api" (HTTP) or "worker" (consumers and ticks)."""
    app_name = config["app_name"]
    names = stage_settings(config, stage)
    table = f"table/{names.table_name}"
    queue_arns = [_region_arn("sqs", spec.name(names)) for spec in queues.ALL_QUEUES]
    log_groups = f"log-group:/aws/lambda/{app_name}-{stage}-*"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [_region_arn("logs", log_groups), _region_arn("logs", f"{log_groups}:log-stream:*")],
        },
        {
            "Sid": "Table",
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ],
            "Resource": [_region_arn("dynamodb", table), _region_arn("dynamodb", f"{table}/index/*")],
        },
        {
            "Sid": "SendToQueues",
            "Effect": "Allow",
            "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"],
            "Resource": queue_arns,
        },
    ]
    if kind == "worker":  # the event source mappings poll with the function's role
        statements.append(
            {
                "Sid": "ConsumeQueues",
                "Effect": "Allow",
                "Action": [
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                ],
                "Resource": queue_arns,
            }
        )
    statements.append(
        {
            # The key's ARN is unknown until CloudFormation creates it: match it by its alias.
            "Sid": "SecretsKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": _region_arn("kms", "key/*"),
            "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": [names.kms_key_id]}},
        }
    )
    if kind == "api":
        parameter = (names.admin_key_parameter or "").lstrip("/")
        statements.append(
            {
                "Sid": "AdminKey",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter"],
                "Resource": _region_arn("ssm", f"parameter/{parameter}"),
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def policy_path(stage: str, kind: str) -> Path:
    return POLICY_DIR / f"{stage}-{kind}.json"


def merge_template_path(stage: str) -> Path:
    return INFRA / f"merge-{stage}.json"


def render(config: dict[str, Any] | None = None) -> dict[Path, str]:
    """Every generated file with its exact content."""
    config = load_config() if config is None else config
    stages = sorted(config["stages"])
    if set(stages) != set(STAGES):
        raise SystemExit(f"config.json stages {stages} != infra/build.py STAGES {sorted(STAGES)}")
    files: dict[Path, str] = {}
    for stage in stages:
        check_stage(config, stage)
        files[merge_template_path(stage)] = _dump(merge_template(config, stage))
        for kind in ("api", "worker"):
            files[policy_path(stage, kind)] = _dump(policy(config, stage, kind))
    return files


def stale_files(files: dict[Path, str] | None = None) -> list[Path]:
    files = render() if files is None else files
    return [p for p, text in files.items() if not p.exists() or p.read_text() != text]


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = parser.parse_args(argv)
    files = render()
    stale = stale_files(files)
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run python infra/build.py)", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
