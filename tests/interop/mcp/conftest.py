"""Every test here runs with the end-to-end log scan: no credential in any server-side log line."""

from tests.support.browser import browser  # noqa: F401 - the headless Chromium fixture
from tests.support.log_scan import captured_server_logs  # noqa: F401 - an autouse fixture
