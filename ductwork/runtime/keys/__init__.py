"""Cache keys: what a step's result depends on, as one digest, and why it changed.

A step is served from the cache when its key is one stored before, so the key must
change whenever the result could: this package owns everything that goes into it.

- ``hashing`` (over ``tokens``, ``dispatch``, ``encoding``, ``hashing_arrays``): deterministic
  value hashing -- a value becomes a canonical, tagged token (a type dispatcher,
  extended by ``register_hash``, a ``__ductwork_hash__`` hook, and numpy/pandas
  handlers registered on first sight), encoded into BLAKE3. Equal values hash
  equal in every process; a value without a deterministic hash is an error,
  never a guess from pickle, ``repr`` or ``id``.
- ``fingerprint`` (over ``walk``, ``members``, ``source``, ``origin``, ``constants``): the code
  fingerprint -- the normalized source of the step and of every user function,
  class and constant it reaches, plus the versions of the packages it uses, so
  editing a helper invalidates exactly the steps that reach it.
- ``classes`` (over ``origin``): the classes an input value is made of, found in
  a value or recorded in a ref when it was written, so their code is in the key.
- ``cache_key``: a step's key from named components (code, options, input
  digests, input classes, environment, ``hash_paths``, ``env_vars``), and
  ``explain``: why a step run hit or ran, naming the component -- down to the
  helper -- that changed.
- ``errors``: ``UnhashableValue``, ``HashHookError`` and ``CacheKeyError``, at the
  bottom so every module here can raise them.

Its memos (fingerprints, parsed sources, constant digests, file digests) are
bounded caches from ``ductwork.runtime.caches``. It sits above the runtime's
basic modules and below ``store``, which hashes what it writes and records the
classes of what it writes (``classes.class_names``, ``register_recorded``).

Other subpackages use ``cache_key`` (``CacheKeyError``, ``input_components``,
``key_basis``, ``finish_key``, ``step_key``, ``explain``), ``hashing``
(``hash_value``, ``hash_tagged``, ``new_hasher``, ``register_hash``,
``UnhashableValue``), ``classes`` (``class_names``, ``register_recorded``) and
``origin.module_kind``; the other modules are this
package's own. Import from those modules: this package re-exports nothing, so
importing ``hashing`` does not import the fingerprint's walker.
"""
