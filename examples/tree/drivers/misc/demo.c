// SPDX-License-Identifier: GPL-2.0
/*
 * demo.c - a made-up misc driver used as the reviewbot example tree.
 *
 * The probe function takes a device reference, a lock and an allocation,
 * and unwinds them in reverse order on every error path.
 */

#include <linux/device.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>

#define DEMO_BUF_SIZE 64

struct demo_priv {
	struct device *dev;
	char *buf;
	int users;
};

static DEFINE_MUTEX(demo_lock);

static int demo_hw_init(struct demo_priv *priv)
{
	if (!priv->buf)
		return -EINVAL;
	priv->buf[0] = 0;
	return 0;
}

static int demo_register(struct demo_priv *priv)
{
	priv->users = 1;
	return 0;
}

static int demo_probe(struct device *parent)
{
	struct demo_priv *priv;
	int ret;

	if (!parent)
		return -ENODEV;

	get_device(parent);

	mutex_lock(&demo_lock);

	priv = kzalloc(sizeof(*priv), GFP_KERNEL);
	if (!priv) {
		ret = -ENOMEM;
		goto err_unlock;
	}

	priv->dev = parent;
	priv->buf = kzalloc(DEMO_BUF_SIZE, GFP_KERNEL);
	if (!priv->buf) {
		ret = -ENOMEM;
		goto err_free_priv;
	}

	ret = demo_hw_init(priv);
	if (ret)
		goto err_free_buf;

	ret = demo_register(priv);
	if (ret)
		goto err_free_buf;

	dev_set_drvdata(parent, priv);
	mutex_unlock(&demo_lock);
	return 0;

err_free_buf:
	kfree(priv->buf);
err_free_priv:
	kfree(priv);
err_unlock:
	mutex_unlock(&demo_lock);
	put_device(parent);
	return ret;
}

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("reviewbot demo driver");
