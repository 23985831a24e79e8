/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * An SSDT that tells the guest kernel what firmware of a Thunderbolt or USB4
 * host says about its external ports: the PCIe root port at 00:04.0, which
 * the harness gives the NVMe device when it must be untrusted
 * (harness/hib/qemu.py), is external-facing.  Linux reads the property in
 * pci_acpi_set_external_facing() and marks every device below the port
 * untrusted, as it does for a real Thunderbolt port.
 *
 * QEMU 7.2's q35 DSDT names the device at slot 4 of bus 0 S20 (its devfn,
 * 0x20); the guest's /sys/bus/pci/devices/0000:00:04.0/firmware_node/path
 * shows it.  The table adds a _DSD to that node, with OEM IDs of its own, so
 * that the kernel installs it (CONFIG_ACPI_TABLE_UPGRADE, from the initramfs)
 * instead of replacing a table of QEMU's.
 */
DefinitionBlock ("extport.aml", "SSDT", 2, "HIB", "EXTPORT", 1)
{
    External (\_SB.PCI0.S20, DeviceObj)

    Scope (\_SB.PCI0.S20)
    {
        Name (_DSD, Package ()
        {
            /* Device Properties for _DSD */
            ToUUID ("daffd814-6eba-4d8c-8a91-bc9bbf4aa301"),
            Package ()
            {
                Package () { "ExternalFacingPort", 1 }
            }
        })
    }
}
