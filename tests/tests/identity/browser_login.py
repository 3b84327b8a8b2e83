"""The login of issue 19 in a real headless browser (Debian's chromium and chromium-driver,
driven by selenium): open /web, land on the login form, type the credentials, submit, and
read the user's login on the auth="user" page. Run by tests/tests/identity/browser.rs as
`python3 browser_login.py BASE_URL LOGIN PASSWORD`; prints `logged-in <login> at <url>`."""

import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

base, login, password = sys.argv[1:4]
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    driver.set_page_load_timeout(30)
    driver.get(base + "/web")
    wait = WebDriverWait(driver, 20)
    wait.until(EC.presence_of_element_located((By.ID, "login")))
    assert "/web/login" in driver.current_url, driver.current_url
    # The label names the field (accessible form).
    assert driver.find_element(By.CSS_SELECTOR, "label[for=login]").text
    driver.find_element(By.ID, "login").send_keys(login)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    shown = wait.until(EC.presence_of_element_located((By.ID, "user_login"))).text
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert cookies["session_id"]["httpOnly"], cookies
    print(f"logged-in {shown} at {driver.current_url}")
finally:
    driver.quit()
