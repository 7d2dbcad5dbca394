"""The starting question bank.

Chosen to suit children and adults alike and to be hard for classmates or staff to
look up (OWASP: no "your teacher's surname", no school mascot, no favourite colour).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfservice.portal.models import Question

#: The shipped questions with their Spanish, Haitian Creole and French wording. Spanish
#: and French avoid gendered adjectives ("in your childhood", not "when you were small").
SEED_BANK: list[dict[str, str]] = [
    {
        "en": "What was the name of the first stuffed animal or toy you loved?",
        "es": "¿Cómo se llamaba el primer peluche o juguete que quiso mucho?",
        "ht": "Ki non premye toutou oswa jwèt ou te renmen an?",
        "fr": "Comment s'appelait la première peluche ou le premier jouet que vous avez aimé ?",
    },
    {
        "en": "What is the name of a place you would most like to visit one day?",
        "es": "¿Cómo se llama un lugar que le gustaría mucho visitar algún día?",
        "ht": "Ki non yon kote ou ta renmen vizite plis pase tout lòt yon jou?",
        "fr": "Quel est le nom d'un lieu que vous aimeriez le plus visiter un jour ?",
    },
    {
        "en": "What food did you refuse to eat when you were small?",
        "es": "¿Qué comida se negaba a comer en su infancia?",
        "ht": "Ki manje ou te refize manje lè ou te piti?",
        "fr": "Quel aliment refusiez-vous de manger dans votre enfance ?",
    },
    {
        "en": "What was the name of your first pet, or a pet you wish you had?",
        "es": "¿Cómo se llamaba su primera mascota, o una mascota que le hubiera gustado tener?",
        "ht": "Ki non premye bèt kay ou, oswa yon bèt kay ou ta renmen te genyen?",
        "fr": "Comment s'appelait votre premier animal de compagnie, ou celui que vous auriez aimé avoir ?",
    },
    {
        "en": "What nickname does only your family use for you?",
        "es": "¿Qué apodo usa solo su familia para llamarle?",
        "ht": "Ki ti non se sèlman fanmi ou ki rele ou konsa?",
        "fr": "Quel surnom seule votre famille vous donne-t-elle ?",
    },
    {
        "en": "What was the first book you remember reading by yourself?",
        "es": "¿Cuál fue el primer libro que recuerda haber leído sin ayuda?",
        "ht": "Ki premye liv ou sonje ou te li pou kont ou?",
        "fr": "Quel est le premier livre que vous vous souvenez d'avoir lu sans aide ?",
    },
    {
        "en": "What is the name of a street you lived on when you were little?",
        "es": "¿Cómo se llama una calle en la que vivió en su infancia?",
        "ht": "Ki non yon lari ou te rete lè ou te piti?",
        "fr": "Quel est le nom d'une rue où vous avez habité dans votre enfance ?",
    },
    {
        "en": "What would you name a boat if you had one?",
        "es": "¿Qué nombre le pondría a un barco si tuviera uno?",
        "ht": "Ki non ou ta bay yon bato si ou te genyen youn?",
        "fr": "Quel nom donneriez-vous à un bateau si vous en aviez un ?",
    },
    {
        "en": "What dessert does someone in your family make best?",
        "es": "¿Qué postre prepara mejor alguien de su familia?",
        "ht": "Ki desè yon moun nan fanmi ou fè pi byen?",
        "fr": "Quel dessert une personne de votre famille réussit-elle le mieux ?",
    },
    {
        "en": "What was the first movie you remember seeing?",
        "es": "¿Cuál fue la primera película que recuerda haber visto?",
        "ht": "Ki premye fim ou sonje ou te gade?",
        "fr": "Quel est le premier film que vous vous souvenez d'avoir vu ?",
    },
    {
        "en": "What is the first name of your oldest cousin?",
        "es": "¿Cuál es el nombre de pila de su primo o prima de más edad?",
        "ht": "Ki prenon kouzen oswa kouzin ou ki pi gran an?",
        "fr": "Quel est le prénom de votre cousin ou cousine le plus âgé ?",
    },
    {
        "en": "What was the name of your imaginary friend or favourite cartoon when you were little?",
        "es": "¿Cómo se llamaba su amigo imaginario o su caricatura favorita en su infancia?",
        "ht": "Ki non zanmi imajinè ou oswa desen anime ou te pi renmen lè ou te piti?",
        "fr": "Comment s'appelait votre ami imaginaire ou votre dessin animé préféré dans votre enfance ?",
    },
    {
        "en": "What word did you say wrong as a small child?",
        "es": "¿Qué palabra pronunciaba mal en su primera infancia?",
        "ht": "Ki mo ou te konn di mal lè ou te tou piti?",
        "fr": "Quel mot prononciez-vous de travers dans votre petite enfance ?",
    },
    {
        "en": "In which city was your oldest relative born?",
        "es": "¿En qué ciudad nació su familiar de más edad?",
        "ht": "Nan ki vil moun ki pi granmoun nan fanmi ou te fèt?",
        "fr": "Dans quelle ville est né le membre le plus âgé de votre famille ?",
    },
    {
        "en": "What color was your first bicycle, scooter or wagon?",
        "es": "¿De qué color era su primera bicicleta, patineta o carrito?",
        "ht": "Ki koulè premye bisiklèt, eskoutè oswa ti kabwèt ou te genyen?",
        "fr": "De quelle couleur était votre premier vélo, trottinette ou chariot ?",
    },
    {
        "en": "What was your favourite game to play on rainy days?",
        "es": "¿Cuál era su juego favorito en los días de lluvia?",
        "ht": "Ki jwèt ou te pi renmen jwe jou lapli?",
        "fr": "Quel était votre jeu préféré les jours de pluie ?",
    },
    {
        "en": "What is the name of a song you would sing in the car?",
        "es": "¿Cómo se llama una canción que cantaba en el carro?",
        "ht": "Ki non yon chante ou te konn chante nan machin?",
        "fr": "Quel est le titre d'une chanson que vous chantiez en voiture ?",
    },
    {
        "en": "What was the first thing you learned to cook?",
        "es": "¿Qué fue lo primero que aprendió a cocinar?",
        "ht": "Ki premye bagay ou te aprann kwit?",
        "fr": "Quelle est la première chose que vous avez appris à cuisiner ?",
    },
]

SEED_QUESTIONS: list[str] = [seed["en"] for seed in SEED_BANK]


def seed_translations(seed: dict[str, str]) -> dict[str, str]:
    """A seed question's translations, as stored in ``Question.translations``."""
    return {code: text for code, text in seed.items() if code != "en"}


def seed_question_bank(session: Session) -> int:
    """Add the seed questions when the bank is empty; returns how many were added."""
    if session.scalar(select(func.count(Question.id))):
        return 0
    session.add_all(
        Question(text=seed["en"], translations=seed_translations(seed), position=index, active=True)
        for index, seed in enumerate(SEED_BANK)
    )
    session.commit()
    return len(SEED_QUESTIONS)
