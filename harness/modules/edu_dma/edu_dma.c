// SPDX-License-Identifier: GPL-2.0-only
/*
 * edu_dma: drive QEMU's "edu" PCI device (1234:11e8) through the streaming DMA
 * API the way network drivers do, to test what a driver reads after a sync.
 *
 * Not part of the series: the harness builds it out of tree for the guest.
 * "echo 1 > /sys/module/edu_dma/parameters/run" runs three checks on the bound
 * device and leaves one line in /sys/module/edu_dma/parameters/result:
 *
 *   cpu   map a buffer DMA_FROM_DEVICE once, let the device write it,
 *         dma_sync_single_for_cpu(), compare (a network RX copy path);
 *   dev   map DMA_TO_DEVICE, change the buffer, dma_sync_single_for_device(),
 *         let the device read it back (a TX buffer reused after a sync);
 *   ring  map once, then four rounds of device write, sync for the CPU,
 *         check, sync for the device (a page_pool RX ring);
 *   remask  map once, set the DMA mask again (as a driver's reset path
 *         does), then device write, sync for the CPU, check.
 *
 * The edu device copies between its 4 KiB buffer at 0x40000 and a bus address
 * with a DMA engine (registers 0x80 source, 0x88 destination, 0x90 count,
 * 0x98 command); QEMU must be given -device edu,dma_mask=0xffffffff, since
 * the device's default mask is 28 bits.
 */
#include <linux/delay.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/random.h>
#include <linux/slab.h>

#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_START	0x1
#define EDU_CMD_TO_RAM	0x2
#define EDU_BUF		0x40000
#define EDU_BUF_SIZE	4096

#define EDU_LEN		2048	/* below the pool's default threshold */
#define EDU_OFF		100	/* not granule aligned */

static struct pci_dev *edu_pdev;
static void __iomem *edu_mmio;
static bool edu_dead;		/* a transfer timed out: the engine may still run */
static int edu_maps;		/* streaming mappings made by the last run */
static DEFINE_MUTEX(edu_lock);
static char edu_result[256] = "not run";
module_param_string(result, edu_result, sizeof(edu_result), 0444);
MODULE_PARM_DESC(result, "outcome of the last run");

/* One transfer of the DMA engine, to or from its buffer; 0 or -ETIMEDOUT. */
static int edu_xfer(dma_addr_t addr, size_t len, bool to_ram)
{
	int i;

	writeq(to_ram ? EDU_BUF : addr, edu_mmio + EDU_DMA_SRC);
	writeq(to_ram ? addr : EDU_BUF, edu_mmio + EDU_DMA_DST);
	writeq(len, edu_mmio + EDU_DMA_CNT);
	writeq(EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0),
	       edu_mmio + EDU_DMA_CMD);
	/* the device finishes a transfer 100 ms (virtual) after the start */
	for (i = 0; i < 500; i++) {
		if (!(readq(edu_mmio + EDU_DMA_CMD) & EDU_CMD_START))
			return 0;
		msleep(20);
	}
	edu_dead = true;
	return -ETIMEDOUT;
}

static dma_addr_t edu_map(struct device *dev, void *buf,
			  enum dma_data_direction dir)
{
	edu_maps++;
	return dma_map_single(dev, buf, EDU_LEN, dir);
}

/* Hand @src's bytes to the device, which writes them to @dst. */
static int edu_copy(struct device *dev, const u8 *src, dma_addr_t dst)
{
	dma_addr_t s = edu_map(dev, (void *)src, DMA_TO_DEVICE);
	int ret;

	if (dma_mapping_error(dev, s))
		return -ENOMEM;
	ret = edu_xfer(s, EDU_LEN, false);
	if (ret)
		return ret;	/* leave it mapped: the engine may still read it */
	dma_unmap_single(dev, s, EDU_LEN, DMA_TO_DEVICE);
	return edu_xfer(dst, EDU_LEN, true);
}

/* map once DMA_FROM_DEVICE, the device writes, sync for the CPU, read */
static const char *edu_check_cpu(struct device *dev, u8 *buf, u8 *pat)
{
	dma_addr_t d;
	const char *res = "ok";

	memset(buf, 0x11, EDU_BUF_SIZE);
	get_random_bytes(pat, EDU_LEN);
	d = edu_map(dev, buf + EDU_OFF, DMA_FROM_DEVICE);
	if (dma_mapping_error(dev, d))
		return "map-failed";
	if (edu_copy(dev, pat, d))
		res = "device-timeout";
	dma_sync_single_for_cpu(dev, d, EDU_LEN, DMA_FROM_DEVICE);
	if (!strcmp(res, "ok") && memcmp(buf + EDU_OFF, pat, EDU_LEN))
		res = memchr_inv(buf + EDU_OFF, 0x11, EDU_LEN) ? "WRONG" : "STALE";
	dma_unmap_single(dev, d, EDU_LEN, DMA_FROM_DEVICE);
	return res;
}

/* map DMA_TO_DEVICE, the CPU changes the data, sync for the device, read */
static const char *edu_check_dev(struct device *dev, u8 *buf, u8 *pat)
{
	u8 *back = kzalloc(EDU_BUF_SIZE, GFP_KERNEL);
	const char *res = "ok";
	dma_addr_t d, b;

	if (!back)
		return "no-memory";
	memset(pat, 0x22, EDU_LEN);
	d = edu_map(dev, pat, DMA_TO_DEVICE);
	b = edu_map(dev, back, DMA_FROM_DEVICE);
	if (dma_mapping_error(dev, d) || dma_mapping_error(dev, b)) {
		res = "map-failed";
		goto out;
	}
	/* the CPU takes the buffer back, writes, and hands it over again */
	dma_sync_single_for_cpu(dev, d, EDU_LEN, DMA_TO_DEVICE);
	get_random_bytes(pat, EDU_LEN);
	dma_sync_single_for_device(dev, d, EDU_LEN, DMA_TO_DEVICE);
	if (edu_xfer(d, EDU_LEN, false) || edu_xfer(b, EDU_LEN, true)) {
		res = "device-timeout";
		goto out;
	}
	dma_unmap_single(dev, b, EDU_LEN, DMA_FROM_DEVICE);
	b = DMA_MAPPING_ERROR;
	if (memcmp(back, pat, EDU_LEN))
		res = memchr_inv(back, 0x22, EDU_LEN) ? "WRONG" : "STALE";
out:
	if (edu_dead)
		return res;	/* leak all: the engine may still use them */
	if (!dma_mapping_error(dev, b))
		dma_unmap_single(dev, b, EDU_LEN, DMA_FROM_DEVICE);
	if (!dma_mapping_error(dev, d))
		dma_unmap_single(dev, d, EDU_LEN, DMA_TO_DEVICE);
	kfree(back);
	return res;
}

/* one mapping, several rounds of device write and sync, as an RX ring */
static const char *edu_check_ring(struct device *dev, u8 *buf, u8 *pat)
{
	const char *res = "ok";
	dma_addr_t d;
	int round;

	memset(buf, 0x33, EDU_BUF_SIZE);
	d = edu_map(dev, buf, DMA_FROM_DEVICE);
	if (dma_mapping_error(dev, d))
		return "map-failed";
	for (round = 0; round < 4 && !strcmp(res, "ok"); round++) {
		get_random_bytes(pat, EDU_LEN);
		if (edu_copy(dev, pat, d)) {
			res = "device-timeout";
			break;
		}
		dma_sync_single_for_cpu(dev, d, EDU_LEN, DMA_FROM_DEVICE);
		if (memcmp(buf, pat, EDU_LEN))
			res = "STALE";
		dma_sync_single_for_device(dev, d, EDU_LEN, DMA_FROM_DEVICE);
	}
	dma_unmap_single(dev, d, EDU_LEN, DMA_FROM_DEVICE);
	return res;
}

/*
 * A mapping that outlives a new dma_set_mask(), as across a driver reset:
 * the device's data is staged first, so that no other mapping is made
 * between the new mask and the sync.
 */
static const char *edu_check_remask(struct device *dev, u8 *buf, u8 *pat)
{
	const char *res = "ok";
	dma_addr_t d, s;

	memset(buf, 0x44, EDU_BUF_SIZE);
	get_random_bytes(pat, EDU_LEN);
	d = edu_map(dev, buf, DMA_FROM_DEVICE);
	if (dma_mapping_error(dev, d))
		return "map-failed";
	s = edu_map(dev, pat, DMA_TO_DEVICE);
	if (dma_mapping_error(dev, s)) {
		res = "map-failed";
		goto out;
	}
	if (edu_xfer(s, EDU_LEN, false))
		res = "device-timeout";
	dma_unmap_single(dev, s, EDU_LEN, DMA_TO_DEVICE);
	if (!strcmp(res, "ok") && dma_set_mask_and_coherent(dev, DMA_BIT_MASK(32)))
		res = "set-mask-failed";
	if (!strcmp(res, "ok") && edu_xfer(d, EDU_LEN, true))
		res = "device-timeout";
	dma_sync_single_for_cpu(dev, d, EDU_LEN, DMA_FROM_DEVICE);
	if (!strcmp(res, "ok") && memcmp(buf, pat, EDU_LEN))
		res = memchr_inv(buf, 0x44, EDU_LEN) ? "WRONG" : "STALE";
out:
	dma_unmap_single(dev, d, EDU_LEN, DMA_FROM_DEVICE);
	return res;
}

static int edu_skip_sync(struct device *dev)
{
#ifdef CONFIG_DMA_NEED_SYNC
	return dev->dma_skip_sync;
#else
	return -1;
#endif
}

static int edu_run_set(const char *val, const struct kernel_param *kp)
{
	u8 *buf = NULL, *pat = NULL;
	const char *cpu, *dv, *ring, *remask;
	struct device *dev;
	int skip;

	mutex_lock(&edu_lock);
	if (!edu_pdev || edu_dead) {
		mutex_unlock(&edu_lock);
		return edu_dead ? -EIO : -ENODEV;
	}
	dev = &edu_pdev->dev;
	buf = kmalloc(EDU_BUF_SIZE, GFP_KERNEL);
	pat = kmalloc(EDU_BUF_SIZE, GFP_KERNEL);
	if (!buf || !pat) {
		kfree(buf);
		kfree(pat);
		mutex_unlock(&edu_lock);
		return -ENOMEM;
	}
	skip = edu_skip_sync(dev);
	edu_maps = 0;
	cpu = edu_check_cpu(dev, buf, pat);
	dv = edu_check_dev(dev, buf, pat);
	ring = edu_check_ring(dev, buf, pat);
	remask = edu_check_remask(dev, buf, pat);
	snprintf(edu_result, sizeof(edu_result),
		 "cpu=%s dev=%s ring=%s remask=%s maps=%d coherent=%d skip_sync_before=%d skip_sync_after=%d",
		 cpu, dv, ring, remask, edu_maps, dev_is_dma_coherent(dev),
		 skip, edu_skip_sync(dev));
	dev_info(dev, "%s\n", edu_result);
	if (!edu_dead) {
		kfree(buf);
		kfree(pat);
	}
	mutex_unlock(&edu_lock);
	return 0;
}

static const struct kernel_param_ops edu_run_ops = {
	.set = edu_run_set,
};
module_param_cb(run, &edu_run_ops, NULL, 0200);
MODULE_PARM_DESC(run, "write anything: run the checks on the bound edu device");

/*
 * The map+unmap microbenchmark: "echo PAGES DIR CALLS > bench" maps and unmaps
 * one page-aligned buffer of PAGES pages (1 to 32) CALLS times with
 * dma_map_single(), DMA_TO_DEVICE for DIR 0 and DMA_FROM_DEVICE for DIR 1,
 * with no I/O in flight, and leaves the mean time per map+unmap pair in
 * nanoseconds in bench_ns.  The device does no DMA: only the cost of the two
 * calls is measured, as a driver pays it.
 */
static char edu_bench_ns[32] = "not run";
module_param_string(bench_ns, edu_bench_ns, sizeof(edu_bench_ns), 0444);
MODULE_PARM_DESC(bench_ns, "ns per map+unmap pair of the last bench run");

static int edu_bench_set(const char *val, const struct kernel_param *kp)
{
	unsigned int pages, dir, calls, i;
	enum dma_data_direction d;
	struct device *dev;
	u64 t0, t1;
	int ret = 0;
	void *buf;

	if (sscanf(val, "%u %u %u", &pages, &dir, &calls) != 3 || !pages ||
	    pages > 32 || dir > 1 || !calls || calls > 1000000)
		return -EINVAL;
	d = dir ? DMA_FROM_DEVICE : DMA_TO_DEVICE;
	buf = alloc_pages_exact(pages * PAGE_SIZE, GFP_KERNEL | __GFP_ZERO);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&edu_lock);
	if (!edu_pdev) {
		ret = -ENODEV;
		goto out;
	}
	dev = &edu_pdev->dev;
	t0 = ktime_get_ns();
	for (i = 0; i < calls; i++) {
		dma_addr_t a = dma_map_single(dev, buf, pages * PAGE_SIZE, d);

		if (dma_mapping_error(dev, a)) {
			ret = -EIO;
			goto out;
		}
		dma_unmap_single(dev, a, pages * PAGE_SIZE, d);
	}
	t1 = ktime_get_ns();
	snprintf(edu_bench_ns, sizeof(edu_bench_ns), "%llu",
		 div_u64(t1 - t0, calls));
out:
	mutex_unlock(&edu_lock);
	free_pages_exact(buf, pages * PAGE_SIZE);
	return ret;
}

static const struct kernel_param_ops edu_bench_ops = {
	.set = edu_bench_set,
};
module_param_cb(bench, &edu_bench_ops, NULL, 0200);
MODULE_PARM_DESC(bench, "PAGES DIR CALLS: time CALLS map+unmap pairs");

static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int ret;

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pcim_iomap_regions(pdev, BIT(0), "edu_dma");
	if (ret)
		return ret;
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(32));
	if (ret)
		return ret;
	pci_set_master(pdev);
	mutex_lock(&edu_lock);
	edu_mmio = pcim_iomap_table(pdev)[0];
	edu_pdev = pdev;
	mutex_unlock(&edu_lock);
	return 0;
}

static void edu_remove(struct pci_dev *pdev)
{
	mutex_lock(&edu_lock);
	edu_pdev = NULL;
	edu_mmio = NULL;
	mutex_unlock(&edu_lock);
}

static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
	.name		= "edu_dma",
	.id_table	= edu_ids,
	.probe		= edu_probe,
	.remove		= edu_remove,
};
module_pci_driver(edu_driver);

MODULE_DESCRIPTION("DMA API sync checks on QEMU's edu device");
MODULE_LICENSE("GPL");
