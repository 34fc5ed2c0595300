"""The project's blocks, held to Prefect's own BlockStandardTestSuite, and how flows resolve them."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from blocks import LLMConfig, StoreLocation


class TestStoreLocation(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return StoreLocation


class TestLLMConfig(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return LLMConfig


def test_secrets_stay_secret() -> None:
    llm = LLMConfig(api_key="sk-block-secret-123")
    location = StoreLocation(url="s3://bucket/prefix", aws_secret_access_key="aws-secret-456")
    assert "sk-block-secret-123" not in repr(llm) and "aws-secret-456" not in repr(location)
    assert llm.settings_overrides()["openai_api_key"].get_secret_value() == "sk-block-secret-123"


def test_a_store_location_block_opens_its_s3_store(s3_url: str, s3_endpoint: str) -> None:
    from content_pipeline.settings import load_settings
    from content_pipeline.store import store_for

    block = StoreLocation(
        url=s3_url,
        endpoint_url=s3_endpoint,
        region="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    settings = load_settings(**block.settings_overrides())
    assert "testing" not in repr(settings)
    store = store_for(settings)
    store.put("probe.json", b"{}")
    assert store.get("probe.json") == b"{}" and store.url == s3_url
