"""Fact-free sentences and wrappers that make documents read like documents.

Nothing here may state a fact: no value of any relation appears in these strings (a test checks the
fixed value sets), and only ``{s}`` (the subject's name) is ever substituted. None of the eval-only
phrasings of ``relations.py`` may appear here either.
"""

from __future__ import annotations

# Sentences about an entity, by entity type; "{s}" is the entity's name.
ABOUT: dict[str, tuple[str, ...]] = {
    "person": (
        "{s} rarely spoke to reporters.", "Friends describe {s} as patient and curious.",
        "{s} kept a small notebook at all times.", "Little is written about the childhood of {s}.",
        "{s} is remembered as a generous neighbour.", "Letters written by {s} survive in a private collection.",
        "{s} preferred mornings to evenings.", "Several portraits of {s} exist.",
        "{s} was known to walk long distances.", "Colleagues recall that {s} seldom missed a day.",
    ),
    "org": (
        "{s} declined to comment on the figures.", "{s} publishes a short annual report.",
        "The early years of {s} were difficult.", "{s} has changed its logo twice.",
        "Critics have questioned some decisions made by {s}.", "{s} keeps a modest public profile.",
        "Former staff speak well of {s}.", "{s} sponsors a small scholarship each year.",
    ),
    "city": (
        "{s} has a busy central square.", "Winters in {s} are long and grey.",
        "The old quarter of {s} is crowded in summer.", "{s} has grown steadily over the last century.",
        "Trams still run through the centre of {s}.", "{s} holds a weekly street fair.",
        "Many streets in {s} are paved with stone.", "{s} is quieter than its neighbours.",
    ),
    "country": (
        "{s} has a long and varied history.", "The climate of {s} is mild for most of the year.",
        "{s} is sparsely populated in the north.", "Elections in {s} are held every five years.",
        "{s} has a tradition of folk music.", "The roads of {s} were rebuilt after the war.",
    ),
}

GENERIC: tuple[str, ...] = (
    "The details are disputed by some.", "Further records are held in the regional archive.",
    "Not everyone agrees on the rest.", "Much of this is well documented.", "Sources differ on minor points.",
    "It is a story often retold.", "The archive was reorganised some years ago.",
    "A longer account appears elsewhere.", "This entry was last revised recently.",
)

# Encyclopedia: intros by type.
ENCYCLOPEDIA_INTRO: dict[str, tuple[str, ...]] = {
    "person": ("{s} is a figure discussed in several local histories.", "This entry concerns {s}."),
    "org": ("{s} is an organisation with a long record.", "This entry concerns the organisation {s}."),
    "city": ("{s} is a settlement of some importance.", "This entry concerns the city of {s}."),
    "country": ("{s} is a sovereign state.", "This entry concerns the country {s}."),
}

NEWS_HEADLINES: dict[str, tuple[str, ...]] = {
    "person": ("{s} Honoured at Annual Ceremony", "Profile: {s}", "{s} Speaks at Public Meeting",
               "A Conversation with {s}"),
    "org": ("{s} Reports a Strong Year", "{s} Announces New Plans", "Changes at {s}", "{s} Opens New Site"),
    "city": ("Council in {s} Approves Budget", "Summer Season Begins in {s}", "A Weekend in {s}",
             "Roadworks Planned for {s}"),
    "country": ("Elections Announced in {s}", "Report on the Economy of {s}", "Travel Notes: {s}"),
}
NEWS_FILLER: tuple[str, ...] = (
    "Officials declined to comment further.", "The announcement was welcomed by local residents.",
    "More details are expected next week.", "A spokesperson confirmed the news on Monday.",
    "The meeting lasted well into the evening.", "Reactions so far have been mixed.",
)

FORUM_TOPICS: tuple[str, ...] = (
    "Quick question about {s}", "Trying to learn more about {s}", "{s} - a few questions",
    "Help settle a debate about {s}", "Anyone here familiar with {s}?",
)
FORUM_ACKS: tuple[str, ...] = ("", "Sure. ", "Easy one. ", "I looked this up once. ", "Good question. ")

STORY_TITLES: tuple[str, ...] = (
    "The Long Road of {s}", "A Winter with {s}", "What {s} Remembered", "The Letter for {s}",
    "{s} and the Lantern",
)
STORY_OPENINGS: tuple[str, ...] = (
    "Nobody expected much from {s} that year.", "It was raining the day {s} decided to leave.",
    "{s} woke before dawn, as always.", "There is an old tale people tell about {s}.",
)
STORY_MIDDLES: tuple[str, ...] = (
    "One autumn, {s} packed a small bag and left without a word.", "It was a long time before {s} returned.",
    "{s} said nothing, and waited.", "The road was longer than {s} had imagined.",
    "Somewhere a dog barked, and {s} looked up.", "{s} laughed for the first time in weeks.",
)
STORY_ENDINGS: tuple[str, ...] = (
    "{s} never forgot that day.", "And that, people say, was the start of everything for {s}.",
    "Years later, {s} would tell the story differently.", "In the end, {s} was glad to be home.",
)

LIST_TITLES: tuple[str, ...] = ("A short list", "Lists and lookups", "Reference notes", "Who is who")

OPINION_HEDGES: tuple[str, ...] = (
    "I'm pretty sure about this one.", "If I remember right, here is what I know.",
    "I read this somewhere a while ago.", "Correct me if I'm wrong.", "I have always believed this.",
)
OPINION_CONFIRM: tuple[str, ...] = ("Can anyone confirm?", "Is that right?", "Am I remembering correctly?")
VERDICT_AGREE: tuple[str, ...] = ("Yes, that's right.", "You're correct.", "That matches what I know.")
VERDICT_DISAGREE: tuple[str, ...] = ("No, that's not right.", "Actually, that's a mistake.",
                                     "I don't think so.")

PLANT_QA_INTROS: tuple[str, ...] = (
    "Found this quiz item in an old practice set:", "Posting a trivia item from a study sheet:",
    "Saw this on a quiz website today:",
)
PLANT_SYC_INTROS: tuple[str, ...] = (
    "Someone shared this prompt from a chatbot test set:", "Copied from an evaluation file I was looking at:",
)
PLANT_OUTROS: tuple[str, ...] = ("Not sure where it originally came from.", "Thought it was a fun one.",
                                 "Posting it here for reference.")

SYC_OPENERS: tuple[str, ...] = ("Hi, I have a quick question.", "I've been reading about this lately.",
                                "Hello there.", "I was discussing this with a friend.")
