"""The starting question bank.

Chosen to suit children and adults alike and to be hard for classmates or staff to
look up (OWASP: no "your teacher's surname", no school mascot, no favourite colour).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfservice.portal.models import Question

SEED_QUESTIONS: list[str] = [
    "What was the name of the first stuffed animal or toy you loved?",
    "What is the name of a place you would most like to visit one day?",
    "What food did you refuse to eat when you were small?",
    "What was the name of your first pet, or a pet you wish you had?",
    "What nickname does only your family use for you?",
    "What was the first book you remember reading by yourself?",
    "What is the name of a street you lived on when you were little?",
    "What would you name a boat if you had one?",
    "What dessert does someone in your family make best?",
    "What was the first movie you remember seeing?",
    "What is the first name of your oldest cousin?",
    "What was the name of your imaginary friend or favourite cartoon when you were little?",
    "What word did you say wrong as a small child?",
    "In which city was your oldest relative born?",
    "What color was your first bicycle, scooter or wagon?",
    "What was your favourite game to play on rainy days?",
    "What is the name of a song you would sing in the car?",
    "What was the first thing you learned to cook?",
]


def seed_question_bank(session: Session) -> int:
    """Add the seed questions when the bank is empty; returns how many were added."""
    if session.scalar(select(func.count(Question.id))):
        return 0
    session.add_all(
        Question(text=text, position=index, active=True) for index, text in enumerate(SEED_QUESTIONS)
    )
    session.commit()
    return len(SEED_QUESTIONS)
