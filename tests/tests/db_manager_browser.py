"""The database manager of issue 20 in a real headless browser (Debian's chromium and
chromium-driver, driven by selenium): open /web/database/manager, fill the create form,
submit, land logged in on /web, then see the new database in /web/database/selector. Run
by tests/tests/db_manager.rs as `python3 db_manager_browser.py BASE_URL MASTER DB LOGIN
PASSWORD`; prints `created <db> as <login>, listed`."""

import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

base, master, db, login, password = sys.argv[1:6]
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    driver.set_page_load_timeout(120)
    driver.get(base + "/web/database/manager")
    wait = WebDriverWait(driver, 120)
    form = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#create form")))
    form.find_element(By.NAME, "master_pwd").send_keys(master)
    form.find_element(By.NAME, "name").send_keys(db)
    form.find_element(By.NAME, "login").send_keys(login)
    form.find_element(By.NAME, "password").send_keys(password)
    Select(form.find_element(By.NAME, "country_code")).select_by_value("be")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    shown = wait.until(EC.presence_of_element_located((By.ID, "user_login"))).text
    assert shown == login, shown
    assert driver.current_url.startswith(base + "/web"), driver.current_url
    driver.get(base + "/web/database/selector")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'li[data-db="{db}"]')))
    print(f"created {db} as {shown}, listed")
finally:
    driver.quit()
