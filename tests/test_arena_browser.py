"""A person's session in a real browser: headless Chromium (Debian's chromium and
chromium-driver, through Selenium) completes consent, instructions, practice, the study turns
and the final preference against `wildsim arena serve`, with two scripted assistants on a
loopback OpenAI-compatible server; the votes are then read back from the database. Sending a
message shows the page's waiting note and disables Send until the replies' page arrives."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from arena.db import open_database, session_factory
from arena.models import Participant, StudySession
from tests.arena_fixtures import StudyServer, scripted_reply, study_config
from tests.eval_fixtures import ScriptedChatServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium / chromedriver not found: run `make system-deps`")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(20)
    yield driver
    driver.quit()


def _click(driver, element_id: str) -> None:
    driver.find_element("id", element_id).click()


def _exchange(driver, text: str, choice: str, rationale: str) -> None:
    driver.find_element("id", "text").send_keys(text)
    _click(driver, "send")
    _click(driver, f"choice-{choice}")  # implicit wait: appears once both replies are in
    driver.find_element("id", "rationale").send_keys(rationale)
    _click(driver, "vote")
    driver.find_element("id", "progress")


def test_a_browser_completes_a_whole_session(browser, tmp_path):
    with ScriptedChatServer(scripted_reply) as assistants:
        cfg = study_config(assistants, f"sqlite:///{tmp_path}/study.db",
                           min_exchanges=2, max_exchanges=3)
        server = StudyServer(cfg, tmp_path).start()
        try:
            browser.get(server.url + "/start?PROLIFIC_PID=browser-1")
            _click(browser, "agree")
            _click(browser, "continue")
            assert browser.find_element("id", "stage").text == "Practice"
            _exchange(browser, "a practice message", "left", "")
            assert browser.find_element("id", "stage").text == "Study"
            _exchange(browser, "first study message", "right", "clearer")
            _exchange(browser, "second study message", "bothbad", "neither helped")
            replies = browser.find_elements("css selector", "#history .assistant .content")
            assert len(replies) == 2 and all("says:" in r.text for r in replies)
            _click(browser, "finish")
            _click(browser, "final-tie")
            _click(browser, "submit-final")
            assert browser.find_element("id", "completion-code").text == "CODE-1234"
        finally:
            server.stop()
    with session_factory(open_database(cfg.db_url))() as s:
        p = s.scalar(select(Participant))
        assert (p.external_id, p.stage, p.final_choice) == ("browser-1", "done", "tie")
        study = s.scalar(select(StudySession).where(StudySession.kind == "study"))
        votes = [(t.user_text, t.vote.choice, t.vote.rationale) for t in study.turns]
        assert votes == [("first study message", "right", "clearer"),
                         ("second study message", "bothbad", "neither helped")]
        bothbad = study.turns[1].vote
        assert bothbad.winner == "tie (bothbad)"


def test_sending_a_message_shows_the_waiting_note(browser, tmp_path):
    """The page's own script shows "Waiting for both assistants" and disables Send when the
    message form is submitted. Chromedriver waits for a pending page before any command, so the
    check cancels that one submission after the page's handler has run, then sends for real."""
    with ScriptedChatServer(scripted_reply) as assistants:
        cfg = study_config(assistants, f"sqlite:///{tmp_path}/study.db")
        server = StudyServer(cfg, tmp_path).start()
        try:
            browser.get(server.url + "/start")
            _click(browser, "agree")
            _click(browser, "continue")
            note = browser.find_element("css selector", "#message-form .waiting")
            assert not note.is_displayed()
            browser.find_element("id", "text").send_keys("a practice message")
            browser.execute_script(  # a listener added after the page's: runs after it
                "const f = document.getElementById('message-form');"
                "f.addEventListener('submit', e => e.preventDefault(), {once: true});"
                "f.requestSubmit(document.getElementById('send'));")
            assert note.is_displayed() and "Waiting for both assistants" in note.text
            assert not browser.find_element("id", "send").is_enabled()
            browser.execute_script("document.getElementById('message-form').submit()")
            _click(browser, "choice-left")  # the replies arrive
            assert len(browser.find_elements("css selector", ".reply")) == 2
        finally:
            server.stop()
