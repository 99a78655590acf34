"""How often the generated data is dirty on purpose, one rate a kind (see `generator`'s docstring).

Both CRMs' generators and the text draws read these, so each rate is stated once.
"""

from __future__ import annotations

P_MISSING_AMOUNT = 0.04
P_WON_NO_AMOUNT = 0.05
P_ABSURD_AMOUNT = 0.015
P_PAST_CLOSE = 0.06
P_NEXT_STEP_NONE = 0.06
P_NEXT_STEP_EMPTY = 0.02
P_NEXT_STEP_LONG = 0.01
P_BAD_PROBABILITY = 0.04
P_LONG_DESCRIPTION = 0.01
P_EMOJI_NAME = 0.02
P_UNICODE_ACCOUNT = 0.05
P_LONG_ACCOUNT = 0.01
P_NO_ACCOUNT = 0.01
P_NO_TYPE = 0.03
P_INACTIVE_OWNER = 0.04
P_HS_NO_OWNER = 0.02
P_HS_NO_CLOSE_DATE = 0.01
P_HS_OWNER_CHANGE = 0.08
