"""The ``LanguageModel`` port's adapter (:mod:`.litellm_model`, any provider litellm speaks), and
the scripted OpenAI-compatible server (:mod:`.scripted`) that the demo and the tests talk to
over real HTTP."""
