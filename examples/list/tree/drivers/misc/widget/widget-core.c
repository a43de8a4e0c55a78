// SPDX-License-Identifier: GPL-2.0
/*
 * widget-core.c - core of the example widget driver
 *
 * A small driver written for reviewbot's bundled example list. It has the
 * shapes a reviewer looks at: a mutex, an allocation and an unwind ladder.
 */
#include <linux/device.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>

#include "widget.h"

static int widget_hw_init(struct widget *w)
{
	if (!w->regs)
		return -ENODEV;
	writel(WIDGET_CTRL_ENABLE, w->regs + WIDGET_CTRL);
	return 0;
}

static void widget_hw_stop(struct widget *w)
{
	writel(0, w->regs + WIDGET_CTRL);
}

int widget_open(struct widget *w)
{
	void *buf;
	int ret;

	mutex_lock(&w->lock);
	if (w->users) {
		ret = -EBUSY;
		goto out_unlock;
	}

	buf = kzalloc(w->len, GFP_KERNEL);
	if (!buf) {
		ret = -ENOMEM;
		goto out_unlock;
	}

	ret = widget_hw_init(w);
	if (ret)
		goto out_free;

	w->buf = buf;
	w->users++;
	mutex_unlock(&w->lock);
	return 0;

out_free:
	kfree(buf);
out_unlock:
	mutex_unlock(&w->lock);
	return ret;
}
EXPORT_SYMBOL_GPL(widget_open);

void widget_close(struct widget *w)
{
	mutex_lock(&w->lock);
	if (--w->users == 0) {
		widget_hw_stop(w);
		kfree(w->buf);
		w->buf = NULL;
	}
	mutex_unlock(&w->lock);
}
EXPORT_SYMBOL_GPL(widget_close);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Example widget driver");
