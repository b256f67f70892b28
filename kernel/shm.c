// SPDX-License-Identifier: GPL-2.0
/* The ivshmem-plain device: BAR 2 is the shared region. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/pci.h>
#include <linux/io.h>
#include "sa.h"

#define SA_IVSHMEM_VENDOR 0x1af4
#define SA_IVSHMEM_DEVICE 0x1110
#define SA_IVSHMEM_BAR 2

void *sa_shm;
size_t sa_shm_size;
static struct pci_dev *sa_pdev;

int sa_shm_map(void)
{
	resource_size_t start, len;
	int err;

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
	pci_release_region(sa_pdev, SA_IVSHMEM_BAR);
	pci_disable_device(sa_pdev);
	pci_dev_put(sa_pdev);
}
