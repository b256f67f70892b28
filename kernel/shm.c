// SPDX-License-Identifier: GPL-2.0
/*
 * The shared region: BAR 2 of the ivshmem-plain device, or, on machines
 * whose QEMU has no ivshmem (mipsel's malta), a range of the guest's own RAM
 * that the kernel was told to leave alone (mem= around it) and that the host
 * maps from the file backing the guest's RAM: portal_phys/portal_size.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/pci.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/ioport.h>
#include "sa.h"

static unsigned long portal_phys, portal_size;
module_param(portal_phys, ulong, 0444);
MODULE_PARM_DESC(portal_phys, "physical address of the region in RAM (no ivshmem)");
module_param(portal_size, ulong, 0444);
MODULE_PARM_DESC(portal_size, "its size in bytes");
static struct resource *sa_ram_res;

#define SA_IVSHMEM_VENDOR 0x1af4
#define SA_IVSHMEM_DEVICE 0x1110
#define SA_IVSHMEM_BAR 2

void *sa_shm;
size_t sa_shm_size;
static struct pci_dev *sa_pdev;

static int sa_ram_map(void)
{
	if (portal_size < SA_REGION_MIN_SIZE) {
		pr_err("shared region too small (%lu)\n", portal_size);
		return -ENOSPC;
	}
	/* refused if the kernel uses the range as RAM */
	sa_ram_res = request_mem_region(portal_phys, portal_size, "syscalls_async");
	if (!sa_ram_res) {
		pr_err("region %#lx+%#lx is in use\n", portal_phys, portal_size);
		return -EBUSY;
	}
	sa_shm = memremap(portal_phys, portal_size, MEMREMAP_WB);
	if (!sa_shm) {
		release_mem_region(portal_phys, portal_size);
		sa_ram_res = NULL;
		return -ENOMEM;
	}
	sa_shm_size = portal_size;
	return 0;
}

int sa_shm_map(void)
{
	resource_size_t start, len;
	int err;

	if (portal_size)
		return sa_ram_map();
	sa_pdev = pci_get_device(SA_IVSHMEM_VENDOR, SA_IVSHMEM_DEVICE, NULL);
	if (!sa_pdev) {
		pr_err("no ivshmem-plain device\n");
		return -ENODEV;
	}
	err = pci_enable_device_mem(sa_pdev);
	if (err)
		goto err_put;
	err = pci_request_region(sa_pdev, SA_IVSHMEM_BAR, "syscalls_async");
	if (err)
		goto err_disable;
	start = pci_resource_start(sa_pdev, SA_IVSHMEM_BAR);
	len = pci_resource_len(sa_pdev, SA_IVSHMEM_BAR);
	if (len < SA_REGION_MIN_SIZE) {
		pr_err("shared region too small (%llu)\n",
		       (unsigned long long)len);
		err = -ENOSPC;
		goto err_release;
	}
	/* QEMU backs the BAR with ordinary RAM: map it cacheable so atomics
	 * and user copies work on it. */
	sa_shm = memremap(start, len, MEMREMAP_WB);
	if (!sa_shm) {
		err = -ENOMEM;
		goto err_release;
	}
	sa_shm_size = len;
	return 0;

err_release:
	pci_release_region(sa_pdev, SA_IVSHMEM_BAR);
err_disable:
	pci_disable_device(sa_pdev);
err_put:
	pci_dev_put(sa_pdev);
	return err;
}

void sa_shm_unmap(void)
{
	memunmap(sa_shm);
	if (sa_ram_res) {
		release_mem_region(portal_phys, portal_size);
		sa_ram_res = NULL;
		return;
	}
	pci_release_region(sa_pdev, SA_IVSHMEM_BAR);
	pci_disable_device(sa_pdev);
	pci_dev_put(sa_pdev);
}
