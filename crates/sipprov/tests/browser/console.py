"""Drives the sipprov web console in a real, headless Chromium (Debian's chromium and
chromium-driver, through python3-selenium). Started by tests/console_browser.rs, which starts
the server and the phones and checks what the phones saw.

Usage: console.py BASE_URL USER PASSWORD DEVICE_MAC PNP_MAC SCREENSHOT_DIR

Exits non-zero, with the failing step, when anything is not as it must be.
"""

import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, USER, PASSWORD, MAC, PNP_MAC, SHOTS = sys.argv[1:7]
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tempfile.mkdtemp(prefix='sipprov-chromium-')}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def set_size(d, name):
    """Sets the viewport (not the window) to the named size."""
    w, h = SIZES[name]
    d.set_window_size(w, h)
    inner_w, inner_h = d.execute_script("return [window.innerWidth, window.innerHeight]")
    d.set_window_size(w + (w - inner_w), h + (h - inner_h))


def step(name):
    print(f"step: {name}", flush=True)


def wait_for(d, what, timeout=15):
    # A form's submit navigates: an element found on the old page goes stale while the new one
    # loads. That is "not yet", not a failure, so the wait keeps polling until its timeout.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(d, timeout, ignored_exceptions=ignored).until(lambda d: what(d))


def shot(d, name):
    d.save_screenshot(os.path.join(SHOTS, f"sipprov-console-{name}.png"))


def check_no_overflow(d, label):
    for size in SIZES:
        set_size(d, size)
        scroll, inner = d.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            wide = d.execute_script(
                "return [...document.querySelectorAll('body *')]"
                ".filter(e => e.getBoundingClientRect().right > window.innerWidth)"
                ".slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id)")
            raise AssertionError(f"{label} at {size}: scrollWidth {scroll} > innerWidth {inner}: {wide}")
        shot(d, f"{label}-{size}")
    set_size(d, "desktop")


def tab_reaches(d, wanted):
    """Presses Tab from the top of the page until each wanted text has had focus."""
    d.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    body = d.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    first = d.execute_script("return document.activeElement.textContent.trim()")
    assert first == "Skip to content", f"the first Tab lands on {first!r}, not the skip link"
    seen = set()
    for _ in range(80):
        text = d.execute_script("return document.activeElement.textContent.trim()")
        seen.add(text)
        if all(w in seen for w in wanted):
            return
        d.switch_to.active_element.send_keys(Keys.TAB)
    missing = [w for w in wanted if w not in seen]
    raise AssertionError(f"Tab never reached {missing}")


def main():
    d = browser()
    try:
        set_size(d, "desktop")
        step("log in")
        d.get(BASE + "/console/")
        assert "/console/login" in d.current_url, d.current_url
        check_no_overflow(d, "login")
        d.find_element(By.ID, "user").send_keys(USER)
        d.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
        wait_for(d, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Fleet overview")
        check_no_overflow(d, "overview")

        step("add a device")
        d.find_element(By.LINK_TEXT, "Devices").click()
        d.find_element(By.LINK_TEXT, "Add a device").click()
        d.find_element(By.ID, "new-mac").send_keys("00:15:65:BB:CC:09")
        Select(d.find_element(By.ID, "new-vendor")).select_by_value("yealink")
        d.find_element(By.ID, "new-model").send_keys("T46S")
        d.find_element(By.ID, "new-group").send_keys("lab")
        check_no_overflow(d, "add-device")
        d.find_element(By.XPATH, "//button[text()='Add device']").click()
        wait_for(d, lambda d: "001565bbcc09" in d.find_element(By.TAG_NAME, "h1").text)

        step("filter devices")
        d.find_element(By.LINK_TEXT, "Devices").click()
        wait_for(d, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Devices")
        d.find_element(By.ID, "q").send_keys(MAC[-6:])
        Select(d.find_element(By.ID, "vendor")).select_by_visible_text("yealink")
        d.find_element(By.CSS_SELECTOR, "form.filters button").click()
        wait_for(d, lambda d: "q=" in d.current_url)
        rows = d.find_elements(By.CSS_SELECTOR, "table.devices tbody tr a.mac")
        assert [r.text for r in rows] == [MAC], [r.text for r in rows]
        check_no_overflow(d, "devices")

        step("open the device")
        rows[0].click()
        wait_for(d, lambda d: MAC in d.find_element(By.TAG_NAME, "h1").text)
        tab_reaches(d, ["Skip to content", "Re-provision now", "Reboot…", "Unlock first fetch", "Save setting"])

        step("a validation error shows next to its field")
        d.find_element(By.ID, "device-key").send_keys("time.zone")
        d.find_element(By.ID, "device-value").send_keys("Mars/Olympus" + Keys.ENTER)
        error = wait_for(d, lambda d: d.find_element(By.ID, "device-value-error"))
        assert "time.zone" in error.text, error.text
        assert d.find_element(By.ID, "device-value").get_attribute("aria-invalid") == "true"
        shot(d, "validation-error")

        step("edit a setting and see the rendered file change")
        key = d.find_element(By.ID, "device-key")
        key.clear()
        key.send_keys("line.1.username")
        d.find_element(By.ID, "device-value").send_keys("2002" + Keys.ENTER)
        wait_for(d, lambda d: "line.1.username saved." in d.find_element(By.CSS_SELECTOR, ".notice").text)
        first = d.find_element(By.CSS_SELECTOR, "details[open] summary").text
        assert first.startswith(MAC + ".cfg"), f"the device's own file is not shown first: {first}"
        files = d.find_element(By.CSS_SELECTOR, "details[open] pre.file").text
        assert "2002" in files, files
        check_no_overflow(d, "device")

        step("reboot, after the confirmation page")
        d.find_element(By.LINK_TEXT, "Reboot…").click()
        wait_for(d, lambda d: d.find_element(By.TAG_NAME, "h1").text.startswith("Reboot"))
        check_no_overflow(d, "reboot-confirm")
        d.find_element(By.XPATH, "//button[text()='Reboot now']").click()
        notice = wait_for(d, lambda d: d.find_element(By.CSS_SELECTOR, ".notice"), timeout=30)
        assert notice.text.startswith("Reboot: ok"), notice.text

        step("a campaign, followed live")
        d.get(BASE + "/console/campaigns")
        d.find_element(By.ID, "t-group").click()
        Select(d.find_element(By.ID, "c-group")).select_by_visible_text("bench")
        check_no_overflow(d, "campaigns")
        d.find_element(By.XPATH, "//button[text()='Preview']").click()
        reach = wait_for(d, lambda d: d.find_element(By.ID, "reach"))
        assert reach.text.startswith("1 device selected"), reach.text
        d.find_element(By.XPATH, "//button[text()='Start campaign']").click()
        first_state = wait_for(d, lambda d: d.find_element(By.ID, "state")).text
        assert first_state in ("scheduled", "running"), f"the campaign was {first_state} before it could be followed"
        assert d.find_element(By.ID, "cancel-form").is_displayed()
        d.execute_script("window.sipprovSamePage = true")
        wait_for(d, lambda d: d.find_element(By.ID, "state").text == "done", timeout=60)
        assert d.execute_script("return window.sipprovSamePage === true"), "the page reloaded: not live"
        progress = d.find_element(By.ID, "progress")
        assert progress.get_attribute("value") == progress.get_attribute("max") == "1"
        assert not d.find_element(By.ID, "cancel-form").is_displayed(), "Cancel still offered for a finished campaign"
        assert d.find_element(By.ID, "retry-form").is_displayed(), "Retry not offered once finished"
        check_no_overflow(d, "campaign")

        step("approve a Plug-and-Play discovery")
        d.find_element(By.LINK_TEXT, "Plug-and-Play").click()
        field = wait_for(d, lambda d: d.find_element(By.ID, f"g-{PNP_MAC}"))
        check_no_overflow(d, "pnp")
        Select(field).select_by_visible_text("lab")
        d.find_element(By.CSS_SELECTOR, f"form[action='/console/pnp/{PNP_MAC}/approve'] button").click()
        notice = wait_for(d, lambda d: d.find_element(By.CSS_SELECTOR, ".notice"))
        assert f"{PNP_MAC} approved into lab." == notice.text, notice.text

        step("groups and global settings")
        d.find_element(By.LINK_TEXT, "Global settings").click()
        wait_for(d, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Global settings")
        check_no_overflow(d, "settings")
        d.get(BASE + "/console/groups/lab")
        check_no_overflow(d, "group")

        step("a broken template override is refused with its line")
        d.find_element(By.LINK_TEXT, "Templates").click()
        wait_for(d, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Templates")
        check_no_overflow(d, "templates")
        d.get(BASE + "/console/templates/yealink/mac.cfg.j2")
        body = wait_for(d, lambda d: d.find_element(By.ID, "tpl-body"))
        body.send_keys(Keys.CONTROL, Keys.END)
        body.send_keys("\n{% if %}\n")
        d.find_element(By.XPATH, "//button[text()='Validate and save']").click()
        error = wait_for(d, lambda d: d.find_element(By.ID, "tpl-error"))
        assert "line" in error.text and "Nothing was saved" in error.text, error.text
        shot(d, "template-refused")
        check_no_overflow(d, "template")

        step("log out")
        d.find_element(By.XPATH, "//button[text()='Log out']").click()
        wait_for(d, lambda d: "/console/login" in d.current_url)
        d.get(BASE + "/console/devices")
        assert "/console/login" in d.current_url, "still logged in after logout"
        print("ok", flush=True)
    except Exception:
        shot(d, "failure")
        print(d.current_url, file=sys.stderr)
        print(d.page_source[:4000], file=sys.stderr)
        raise
    finally:
        d.quit()


if __name__ == "__main__":
    main()
