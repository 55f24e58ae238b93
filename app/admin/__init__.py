"""The administration API: accounts, tokens and the run-time settings (``/api/v1/accounts``,
``/api/v1/tokens``, ``/api/v1/config``). It sits above ``auth`` (its guards) and the ``accounts`` and
``config`` services it calls."""
