"""Task bodies read well in each CRM: hard-wrapped YAML blocks reflowed, HubSpot paragraphs."""

from __future__ import annotations

from crmsync.model.text import html_text, reflow

WRAPPED = """Nothing has been logged on Acme for
25 days. Log your last touch, or plan
the next one.

What to do:
- call the buyer
- set a next step
  with a date


"""


def test_reflow_joins_hard_wrapped_lines_and_keeps_paragraphs_and_list_items() -> None:
    """A YAML `|` block's line breaks inside a sentence go; blank-line paragraphs and list
    items stay; nothing trails."""
    assert reflow(WRAPPED) == (
        "Nothing has been logged on Acme for 25 days. Log your last touch, or plan the next one."
        "\n\nWhat to do:\n- call the buyer\n- set a next step with a date"
    )
    assert reflow("") == ""
    assert reflow("one line") == "one line"


def test_html_body_is_escaped_paragraphs() -> None:
    """HubSpot's rich-text body: one <p> per paragraph, <br> inside, markup escaped."""
    assert html_text(reflow(WRAPPED + "\n<b>bold</b> & co")) == (
        "<p>Nothing has been logged on Acme for 25 days. Log your last touch, or plan the next "
        "one.</p><p>What to do:<br>- call the buyer<br>- set a next step with a date</p>"
        "<p>&lt;b&gt;bold&lt;/b&gt; &amp; co</p>"
    )
