"""error-path.lost-errno (and missing-errno's loop forms) on real functions, read at test
time from ../shared/corpus-real and from linux-source-6.1 (never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

from kernel_tree import corpus_real_file, tree_file
from rule_pairs import review

from reviewbot.cmodel import parse_c
from reviewbot.review.analysis import analyze_cfile

LOST = "error-path.lost-errno"


def _findings(path: Path, function: str, rule: str = LOST):
    cf = parse_c(path.read_text(), str(path))
    return [f for f in analyze_cfile(cf, str(path), only=[function]) if f.rule == rule]






def test_gfs2_freeze_super_thaw_overwrites_the_error():
    """069's base (fs/gfs2/super.c before 6.1.160's fix):

        error = gfs2_lock_fs_check_clean(sdp);
        if (!error)
            break;  /* success */

        error = gfs2_do_thaw(sdp);
        if (error)
            goto out;

        if (error == -EBUSY)
            fs_err(sdp, "waiting for recovery before freeze\\n");
    """
    fs = _findings(corpus_real_file("069-gfs2-freeze-super-error-clobber", "fs/gfs2/super.c"),
                   "gfs2_freeze_super")
    assert [(f.line, f.resource, f.confidence) for f in fs] == [(777, "error", "high")]
    assert "gfs2_lock_fs_check_clean()" in fs[0].message and "gfs2_do_thaw()" in fs[0].message
    assert 781 in fs[0].lines  # the stale -EBUSY test


def test_efivar_entry_get_drops_the_result():
    """073's base (fs/efivarfs/vars.c before 6.1.162's fix):

        err = efivar_lock();
        if (err)
            return err;
        err = __efivar_entry_get(entry, attributes, size, data);
        efivar_unlock();

        return 0;
    """
    fs = _findings(corpus_real_file("073-efivar-entry-get-errcode", "fs/efivarfs/vars.c"),
                   "efivar_entry_get")
    assert [(f.line, f.resource) for f in fs] == [(612, "err")]
    assert "__efivar_entry_get()" in fs[0].message


def test_gfs2_statfs_init_goto_to_return_zero():
    """linux-source-6.1 fs/gfs2/super.c:

        error = gfs2_glock_nq_init(m_ip->i_gl, LM_ST_EXCLUSIVE, GL_NOCACHE, &gh);
        if (error)
            return error;

        error = gfs2_meta_inode_buffer(m_ip, &m_bh);
        if (error)
            goto out;
        ...
    out:
        gfs2_glock_dq_uninit(&gh);
        return 0;
    """
    fs = _findings(tree_file("fs/gfs2/super.c"), "gfs2_statfs_init")
    assert len(fs) == 1 and fs[0].resource == "error"
    assert "gfs2_meta_inode_buffer()" in fs[0].message


def test_fixed_functions_are_quiet():
    """The same two functions as fixed in linux-source-6.1 (6.1.176):

        error = gfs2_lock_fs_check_clean(sdp);
        if (!error)
            break;  /* success */

        (void)gfs2_do_thaw(sdp);

    and

        err = __efivar_entry_get(entry, attributes, size, data);
        efivar_unlock();

        return err;
    """
    assert _findings(tree_file("fs/gfs2/super.c"), "gfs2_freeze_super") == []
    assert _findings(tree_file("fs/efivarfs/vars.c"), "efivar_entry_get") == []


def test_loop_that_ends_on_a_flag_is_quiet():
    """fs/efivarfs/vars.c efivar_init (linux-source-6.1): the failure sets the status that
    ends the loop, it is not only logged:

                err = func(variable_name, vendor_guid, variable_name_size, data);
                if (err)
                    status = EFI_NOT_FOUND;
    """
    assert _findings(tree_file("fs/efivarfs/vars.c"), "efivar_init") == []


def _function(path: Path, name: str) -> str:
    """The text of one function of a file (reviewing it alone keeps the test fast)."""
    src = path.read_bytes()
    fn = parse_c(src.decode(), str(path)).by_name()[name]
    return src[fn.node.start_byte:fn.node.end_byte].decode() + "\n"


def _f2fs_pair(name: str) -> tuple[str, str]:
    """071's base is fs/f2fs/super.c before 6.1.160's fix, 072's after it."""
    return (_function(corpus_real_file("071-f2fs-enable-checkpoint-errcode", "fs/f2fs/super.c"), name),
            _function(corpus_real_file("072-f2fs-enable-checkpoint-errcode-rev", "fs/f2fs/super.c"), name))


def test_patch_that_stops_testing_a_result(tmp_path):
    """072's patch (the inverse of the fix) in f2fs_remount:

                } else {
        -			err = f2fs_enable_checkpoint(sbi);
        -			if (err)
        -				goto restore_discard;
        +			f2fs_enable_checkpoint(sbi);
                }

    (the same in f2fs_fill_super); reported as introduced.
    """
    buggy, fixed = _f2fs_pair("f2fs_remount")
    fs = [f for f in review(tmp_path, fixed, buggy, "fs/f2fs/super.c") if f.rule == LOST]
    assert [(f.function, f.resource, f.status) for f in fs] == [
        ("f2fs_remount", "f2fs_enable_checkpoint()", "introduced")]
    assert buggy.splitlines()[fs[0].line - 1].strip() == "f2fs_enable_checkpoint(sbi);"


def test_patch_that_adds_the_test_is_a_fix(tmp_path):
    """The fix itself (071's patch) makes `f2fs_enable_checkpoint(sbi);` into
    `err = f2fs_enable_checkpoint(sbi); if (err) goto restore_discard;`: nothing introduced
    (the assertion of the first version of this test, kept), and the bare call it replaces
    is reported as fixed, at its line in the pre-image."""
    buggy, fixed = _f2fs_pair("f2fs_remount")
    fs = [f for f in review(tmp_path, buggy, fixed, "fs/f2fs/super.c") if f.rule == LOST]
    assert [f for f in fs if f.status != "fixed"] == []
    assert [(f.function, f.resource, f.status) for f in fs] == [
        ("f2fs_remount", "f2fs_enable_checkpoint()", "fixed")]
    assert buggy.splitlines()[fs[0].line - 1].strip() == "f2fs_enable_checkpoint(sbi);"
    assert "before the patch" in fs[0].message


def test_status_walk_callback_that_logs_and_goes_on_is_quiet():
    """drivers/acpi/acpi_processor.c acpi_processor_ids_walk() (linux-source-6.1), an
    acpi_status namespace-walk callback: the first failure stops the walk, the later ones
    are reported and the walk goes on, on purpose:

        status = acpi_get_type(handle, &acpi_type);
        if (ACPI_FAILURE(status))
            return status;
        ...
            status = acpi_evaluate_integer(handle, "_UID", NULL, &uid);
            if (ACPI_FAILURE(status))
                goto err;
        ...
    err:
        /* Exit on error, but don't abort the namespace walk */
        acpi_handle_info(handle, "Invalid processor object\\n");
        return AE_OK;

    The status form's shape (a failure jumps to an exit returning the success constant
    while another failure test returns the status) with an exit that only logs."""
    assert _findings(tree_file("drivers/acpi/acpi_processor.c"), "acpi_processor_ids_walk") == []


def test_cleanup_status_overwrites_the_failure_ath10k():
    """drivers/net/wireless/ath/ath10k/mac.c ath10k_monitor_vdev_start(): when the vdev
    cannot be put up, the stop that undoes the start overwrites the error; if the stop
    works, the function reports that the monitor vdev started:

        ret = ath10k_wmi_vdev_up(ar, vdev_id, 0, ar->mac_addr);
        if (ret) {
            ath10k_warn(ar, "failed to put up monitor vdev %i: %d\\n", vdev_id, ret);
            goto vdev_stop;
        }
        ...
    vdev_stop:
        ret = ath10k_wmi_vdev_stop(ar, ar->monitor_vdev_id);
        if (ret)
            ath10k_warn(ar, "failed to stop monitor vdev %i after start failure: %d\\n", ...);
        return ret;
    """
    fs = _findings(tree_file("drivers/net/wireless/ath/ath10k/mac.c"),
                   "ath10k_monitor_vdev_start")
    assert [(f.line, f.resource, f.confidence) for f in fs] == [(1103, "ret", "medium")]
    assert "ath10k_wmi_vdev_up() tested at line 1090" in fs[0].message


def test_unread_key_send_result_iwlwifi():
    """drivers/net/wireless/intel/iwlwifi/mvm/sta.c iwl_mvm_add_pasn_sta(): the key is
    sent and its result dropped, while the earlier steps' failures are returned:

        ret = iwl_mvm_send_sta_key(mvm, sta->sta_id, keyconf, false,
                                   0, NULL, 0, 0, true);
        kfree(keyconf);
        return 0;
    """
    fs = _findings(tree_file("drivers/net/wireless/intel/iwlwifi/mvm/sta.c"),
                   "iwl_mvm_add_pasn_sta")
    assert [(f.line, f.resource, f.confidence) for f in fs] == [(4188, "ret", "medium")]


def test_a_result_the_code_says_it_need_not_check_is_quiet():
    """drivers/media/usb/em28xx/em28xx-cards.c em28xx_usb_probe():

        /*
         * No need to check the return value, the device will still be
         * usable without media controller API.
         */
        retval = media_device_register(dev->media_dev);
    #endif
        return 0;

    and drivers/platform/x86/asus-wmi.c asus_wmi_add():
    `err = asus_wmi_fan_init(asus); /* probably no problems on error */` overwritten
    by the next step's result."""
    assert _findings(tree_file("drivers/media/usb/em28xx/em28xx-cards.c"),
                     "em28xx_usb_probe") == []
    assert _findings(tree_file("drivers/platform/x86/asus-wmi.c"), "asus_wmi_add") == []


def test_retry_scheduled_in_the_failure_branch_is_quiet():
    """sound/pci/hda/hda_intel.c azx_probe_continue(): the codec probe failure schedules a
    retry and returns 0 on purpose ("keep things up"); only the last attempt gives up:

        err = azx_codec_configure(chip);
        if (err) {
            if ((chip->driver_caps & AZX_DCAPS_RETRY_PROBE) &&
                ++hda->probe_retry < 60) {
                schedule_delayed_work(&hda->probe_work, msecs_to_jiffies(1000));
                return 0; /* keep things up */
            }
            dev_err(chip->card->dev, "Cannot probe codecs, giving up\\n");
            goto out_free;
        }
    """
    assert _findings(tree_file("sound/pci/hda/hda_intel.c"), "azx_probe_continue") == []
