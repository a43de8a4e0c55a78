/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _WIDGET_H
#define _WIDGET_H

#include <linux/io.h>
#include <linux/mutex.h>

#define WIDGET_CTRL		0x00
#define WIDGET_STATUS		0x04
#define WIDGET_CTRL_ENABLE	0x1
#define WIDGET_CTRL_SUSPEND	0x2

struct widget_state {
	u32 ctrl;
	u32 status;
};

struct widget {
	struct device *dev;
	void __iomem *regs;
	struct mutex lock;
	void *buf;
	size_t len;
	int users;
	struct widget_state *saved;
};

int widget_open(struct widget *w);
void widget_close(struct widget *w);

#endif /* _WIDGET_H */
