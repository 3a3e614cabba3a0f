"""What rerank knows of providers: profiles, instructions and the Qwen3 template, tokenizers,
prices."""
