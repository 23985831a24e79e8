# SPDX-License-Identifier: GPL-2.0-only
"""io-buffer-pool harness: one module per stage (kconfig, qemu, guest output, report)."""
