"""Build a generator from the ``OPENOPS_LLM`` spec (``<provider>:<model>``).

``extractive`` (no language model) is not built here: the caller handles it before asking
for a hosted or self-hosted model. Importing this module imports no LangChain or SDK; the
generator imports them on first use, and its constructor fails early, naming the package
to install, when one is missing.
"""

from __future__ import annotations

import os

from rag.llm.base import Generator
from rag.llm.providers import (
    KEY_SETTING,
    MODEL_SETTING,
    AnthropicGenerator,
    AzureOpenAIGenerator,
    OpenAICompatibleGenerator,
    OpenAIGenerator,
    ProviderConfigError,
)

SPEC_FORMS = (
    "openai:<model>  (e.g. openai:gpt-4o-mini)",
    "azure_openai:<deployment>  (with OPENOPS_AZURE_OPENAI_ENDPOINT)",
    "anthropic:<model>  (e.g. anthropic:claude-3-5-haiku-latest)",
    "openai_compatible:<model>  (LocalAI, Ollama, vLLM, llama.cpp; with OPENOPS_LLM_BASE_URL)",
    "extractive  (no language model)",
)

EXAMPLES = {
    "openai": "openai:gpt-4o-mini",
    "azure_openai": "azure_openai:my-gpt-4o-deployment",
    "anthropic": "anthropic:claude-3-5-haiku-latest",
    "openai_compatible": "openai_compatible:llama3.1:8b",
}

# The provider's own variable, read when OPENOPS_LLM_API_KEY is not set.
KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "azure_openai": "AZURE_OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}


def _forms() -> str:
    return "; ".join(SPEC_FORMS)


def parse_spec(spec: str) -> tuple[str, str]:
    """``"openai:gpt-4o-mini"`` -> ``("openai", "gpt-4o-mini")``; ValueError when malformed."""
    provider, sep, model = (spec or "").strip().partition(":")
    provider = provider.strip().lower().replace("-", "_")
    model = model.strip()
    if provider not in (*KEY_ENV, "openai_compatible"):
        hint = " (extractive is handled by the caller)" if provider == "extractive" else ""
        raise ProviderConfigError(
            f"unknown language model {spec!r} in {MODEL_SETTING}{hint}; use one of: {_forms()}"
        )
    if not sep or not model:
        raise ProviderConfigError(
            f"{MODEL_SETTING}={spec!r} names no model; write {provider}:<model>, e.g. {EXAMPLES[provider]}"
        )
    return provider, model


def resolve_api_key(provider: str, api_key: str | None) -> str | None:
    """The configured key, else the provider's usual variable; an error names both."""
    if api_key:
        return api_key
    env = KEY_ENV.get(provider)
    if env is None:  # openai_compatible: optional
        return None
    value = os.environ.get(env)
    if value:
        return value
    raise ProviderConfigError(f"no API key for {provider}: set {KEY_SETTING} (or {env})")


def make_generator(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 60.0,
    max_retries: int = 2,
    azure_endpoint: str | None = None,
    azure_api_version: str | None = None,
    context_tokens: int | None = None,
    connect_timeout_s: float | None = None,
) -> Generator:
    """The generator for ``spec``; raises ``ValueError`` (a ``ProviderConfigError``) when
    the spec, key, endpoint or an optional package is missing or wrong.

    ``timeout_s`` bounds every read (the wait for the first and for each next chunk);
    ``connect_timeout_s`` the TCP/TLS connect (default: min(10, timeout_s)). ``max_retries``
    counts retries after the first attempt, made only before the first token."""
    provider, model = parse_spec(spec)
    common: dict = dict(
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
        max_retries=max_retries,
        context_tokens=context_tokens,
    )
    match provider:
        case "openai":
            return OpenAIGenerator(
                model, api_key=resolve_api_key(provider, api_key), base_url=base_url, **common
            )
        case "azure_openai":
            return AzureOpenAIGenerator(
                model,
                api_key=resolve_api_key(provider, api_key),
                azure_endpoint=azure_endpoint or base_url,
                api_version=azure_api_version,
                **common,
            )
        case "anthropic":
            return AnthropicGenerator(
                model, api_key=resolve_api_key(provider, api_key), base_url=base_url, **common
            )
        case "openai_compatible":
            return OpenAICompatibleGenerator(
                model, api_key=resolve_api_key(provider, api_key), base_url=base_url, **common
            )
    raise AssertionError(provider)  # pragma: no cover - parse_spec checked it
