"""TLS tests (issue 13). A package, so ``tests/tls/conftest.py`` is ``tls.conftest`` and
does not displace ``tests/conftest.py`` as the module ``conftest`` (which the other test
directories import from): pytest would otherwise drop the root one from sys.modules when
it loads this directory's conftest.py. Import helpers with ``from tls.conftest import ...``."""
