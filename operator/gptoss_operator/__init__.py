"""gptoss-operator: serve OpenAI's gpt-oss models on vLLM from one Kubernetes resource."""

__version__ = "0.1.0"
