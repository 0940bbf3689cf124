"""The one DynamoDB table: its key schema, indexes and TTL.

This is the single source for the table's shape: infra/ renders it into CloudFormation and the
local stack and tests create moto's table from it, so the three cannot drift.
"""

from __future__ import annotations

from typing import Any

PK = "PK"
SK = "SK"
GSI1 = "GSI1"  # by staff member: a staff member's relations, newest first
GSI1_PK = "GSI1PK"
GSI1_SK = "GSI1SK"
GSI2 = "GSI2"  # by lookup value: API key hash, channel-code state, tag membership
GSI2_PK = "GSI2PK"
GSI2_SK = "GSI2SK"
TTL_ATTRIBUTE = "expires_at"


def table_definition(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB CreateTable (on-demand billing)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in (PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK)
        ],
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, pk, sk in ((GSI1, GSI1_PK, GSI1_SK), (GSI2, GSI2_PK, GSI2_SK))
        ],
    }


def create_table(dynamodb_client: Any, table_name: str) -> None:
    """Create the table with its TTL (idempotent: an existing table is left alone)."""
    try:
        dynamodb_client.create_table(**table_definition(table_name))
    except dynamodb_client.exceptions.ResourceInUseException:
        return
    dynamodb_client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
