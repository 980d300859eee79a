"""OpenAI-compatible chat completions and the native /v1/requests call: the request pipeline."""
