"""MIST's vocabularies: names, places, organisations, health and finance words.

What it is: compact, general word lists written into the repository (no downloads at
run time), exposed as frozensets of lower-case tokens or phrases for O(1) lookups on
the hot path, plus :func:`is_common_word`, which asks the SCOWL list in
``mist_english`` whether a token is an ordinary English word. The lists are general
knowledge (common given names and surnames across many cultures, countries, large
cities, common diagnoses and medicines); they were not derived from any benchmark.

What it is not: a detector. ``mist_names`` and ``mist_detectors`` decide what a match
means; this module only answers "is this word in list X?".
"""

from __future__ import annotations

import functools

from islandrun.node.mist_english import WORDS as _ENGLISH


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _phrases(text: str) -> frozenset[str]:
    return frozenset(p.strip() for p in text.split(",") if p.strip())


FIRST_NAMES = _words(
    """
    aaron abdul abigail abraham adam adrian ahmed aisha akira alan albert alejandro alex
    alexander alexandra alexis ali alice alicia alina alison amanda amber amelia amir amit
    amy ana andre andrea andreas andrew andy angela angelo ania anita ann anna anne annie
    anthony antonio anya arjun arthur ashley aurora austin ava barbara beatriz ben benjamin
    bernard beth betty bill billy bob bonnie brad brandon brenda brian bridget brittany
    bruce bruno bryan caitlin camila carl carla carlos carmen carol caroline carolyn
    catherine cecilia charles charlie charlotte chen cheryl chloe chris christian christina
    christine christopher cindy claire clara claudia colin connor craig cristina cynthia
    daisy dan daniel daniela danielle david dawn dean deborah debra denise dennis derek
    diana diane diego dimitri dmitry dolores dominic donald donna doris dorothy douglas
    dylan ed eduardo edward elena eleanor eli elif elijah elizabeth ella ellen emily emma
    emre eric erik erin ethan eva evelyn fatima felix fernando fiona florian frances
    francesca francisco frank fred gabriel gabriela gary george georgia gerald gina giulia
    giuseppe giovanni gloria grace greg gregory guillermo gustavo hannah hans harold harry
    hassan heather helen henry hiroshi holly hope howard hugo ian igor ines ingrid irene
    isaac isabel isabella ivan jack jackie jacob jacqueline jake james jamie jan jane janet
    janice jasmine jason javier jean jeff jeffrey jennifer jenny jeremy jerry jesse jessica
    jesus jill jim jimmy joan joanna joe joel johan johannes john johnny jon jonathan jordan
    jorge jose joseph joshua joy joyce juan judith judy julia julian julie justin karen
    karin katarzyna kate katherine kathleen kathryn katie kayla keith kelly ken kenji
    kenneth kevin kim kimberly kyle lana larry laura lauren lawrence leah lee leo leon
    leonardo lily linda lisa liam logan lorenzo louis louise lucas lucia lucy luis luka
    lukas luke maja manuel marc marcel marco margaret maria marie marina mario mark marta
    martha martin mary mason mateo matthew maria max maya megan mei melissa mia michael
    michelle miguel mike mila miriam mohamed mohammed monica muhammad nancy naomi natalia
    natalie nathan neil nicholas nicole nina noah noor olga oliver olivia omar oscar owen
    pablo pamela patricia patrick paul paula pedro peter philip pierre pietro priya rachel
    rafael rahul raj ralph ramon randy raymond rebecca richard rita robert roberto robin
    roger ronald rosa rose roy ruby russell ruth ryan sabrina sam samantha samuel sandra
    santiago sara sarah scott sean sebastian sergei sergio shannon sharon shirley sofia
    sophia sophie stefan stephanie stephen steve steven susan suzanne svetlana takeshi
    tamara tanya teresa terry thomas tiffany tim timothy tina todd tom tommy tony tracy
    tyler valentina valerie vanessa vera veronica victor victoria vikram vincent virginia
    walter wang wayne wei wendy william willie xavier yan yasmin yuki yusuf zachary zoe
    """
)

SURNAMES = _words(
    """
    abbott adams ahmed alexander ali allen alvarez anderson andersen bailey baker banks
    barnes bauer becker bell bennett berg brooks brown bryant butler campbell carter
    castillo chan chang chavez chen clark cohen cole coleman collins cook cooper costa
    cox cruz cunningham davies davis diaz dubois edwards ellis evans fernandez ferrari
    fischer fisher flores ford foster garcia gibson gomez gonzalez gordon graham gray green
    griffin gupta hall hamilton hansen harris harrison hayes henderson hernandez hill
    hoffmann hughes hunt jackson james jansen jenkins jensen johansson johnson jones jordan
    kaur keller kelly kennedy khan kim king klein koch kowalski kumar larsen lee lewis li
    lin liu lopez martin martinez meyer miller mitchell moore morales morgan morris muller
    murphy murray nelson nguyen nielsen novak o'brien olsen ortiz owens park parker patel
    perez perry peters petrov phillips powell price ramirez ramos reed reyes richardson
    rivera roberts robinson rodriguez rogers romero rossi russell russo ryan sanchez sanders
    santos schmidt schneider schulz scott shah sharma silva simmons singh smith stewart
    sullivan suzuki tanaka taylor thomas thompson torres tran turner walker wallace wang
    ward washington watson weber white williams wilson wood wright wu yamamoto yang young
    zhang zhao
    """
)

HONORIFICS = _words("mr mrs ms miss mx dr prof sir madam dame lord lady rev fr sr sra herr frau")

COUNTRIES = _phrases(
    """
    afghanistan, albania, algeria, andorra, angola, argentina, armenia, australia, austria,
    azerbaijan, bahamas, bahrain, bangladesh, barbados, belarus, belgium, belize, benin,
    bhutan, bolivia, bosnia, botswana, brazil, brunei, bulgaria, burkina faso, burundi,
    cambodia, cameroon, canada, chad, chile, china, colombia, congo, costa rica, croatia,
    cuba, cyprus, czechia, czech republic, denmark, djibouti, dominican republic, ecuador,
    egypt, el salvador, england, eritrea, estonia, eswatini, ethiopia, fiji, finland,
    france, gabon, gambia, georgia, germany, ghana, greece, greenland, guatemala, guinea,
    guyana, haiti, honduras, hong kong, hungary, iceland, india, indonesia, iran, iraq,
    ireland, israel, italy, jamaica, japan, jordan, kazakhstan, kenya, korea, kosovo,
    kuwait, kyrgyzstan, laos, latvia, lebanon, lesotho, liberia, libya, liechtenstein,
    lithuania, luxembourg, madagascar, malawi, malaysia, maldives, mali, malta, mauritania,
    mauritius, mexico, moldova, monaco, mongolia, montenegro, morocco, mozambique, myanmar,
    namibia, nepal, netherlands, new zealand, nicaragua, niger, nigeria, north korea,
    north macedonia, norway, oman, pakistan, palestine, panama, paraguay, peru,
    philippines, poland, portugal, puerto rico, qatar, romania, russia, rwanda,
    saudi arabia, scotland, senegal, serbia, sierra leone, singapore, slovakia, slovenia,
    somalia, south africa, south korea, spain, sri lanka, sudan, suriname, sweden,
    switzerland, syria, taiwan, tajikistan, tanzania, thailand, togo, tunisia, turkey,
    turkmenistan, uganda, ukraine, united arab emirates, united kingdom, united states,
    uruguay, usa, uzbekistan, venezuela, vietnam, wales, yemen, zambia, zimbabwe
    """
)

REGIONS = _phrases(
    """
    alabama, alaska, arizona, arkansas, california, colorado, connecticut, delaware,
    florida, hawaii, idaho, illinois, indiana, iowa, kansas, kentucky, louisiana, maine,
    maryland, massachusetts, michigan, minnesota, mississippi, missouri, montana, nebraska,
    nevada, new hampshire, new jersey, new mexico, new york, north carolina, north dakota,
    ohio, oklahoma, oregon, pennsylvania, rhode island, south carolina, south dakota,
    tennessee, texas, utah, vermont, virginia, washington, west virginia, wisconsin,
    wyoming, ontario, quebec, british columbia, alberta, bavaria, catalonia, andalusia,
    tuscany, lombardy, provence, normandy, brittany, flanders, wallonia, silesia, siberia,
    scandinavia, europe, asia, africa, america, oceania, antarctica, middle east
    """
)

CITIES = _phrases(
    """
    amsterdam, ankara, athens, atlanta, auckland, austin, baghdad, baltimore, bangalore,
    bangkok, barcelona, beijing, beirut, belfast, belgrade, berlin, birmingham, bogota,
    bologna, bordeaux, boston, brisbane, bristol, brussels, bucharest, budapest,
    buenos aires, cairo, calgary, cape town, caracas, cardiff, casablanca, charlotte,
    chennai, chicago, cincinnati, cleveland, cologne, columbus, copenhagen, dallas,
    delhi, denver, detroit, dhaka, dubai, dublin, durban, edinburgh, florence, frankfurt,
    geneva, genoa, glasgow, gothenburg, hamburg, hanoi, havana, helsinki, houston,
    hyderabad, istanbul, jakarta, jerusalem, johannesburg, kabul, karachi, kiev, kyiv,
    kolkata, krakow, kuala lumpur, lagos, la paz, las vegas, leeds, leipzig, lima, lisbon,
    liverpool, london, los angeles, lyon, madrid, manchester, manila, marseille,
    melbourne, memphis, miami, milan, milwaukee, minneapolis, montreal, moscow, mumbai,
    munich, nairobi, naples, nashville, new delhi, new orleans, nice, oakland, osaka, oslo,
    ottawa, oxford, palermo, paris, perth, philadelphia, phoenix, pittsburgh, porto,
    portland, prague, quito, reykjavik, riga, rio de janeiro, riyadh, rome, rotterdam,
    sacramento, san antonio, san diego, san francisco, san jose, santiago, sao paulo,
    seattle, seoul, seville, shanghai, shenzhen, singapore, sofia, st louis, stockholm,
    stuttgart, sydney, taipei, tallinn, tampa, tehran, tel aviv, tokyo, toronto, tunis,
    turin, utrecht, valencia, vancouver, venice, vienna, vilnius, warsaw, wellington,
    zagreb, zurich
    """
)

DEMOGRAPHICS = _phrases(
    """
    african, african american, albanian, american, arab, argentinian, armenian, asian,
    asian american, australian, austrian, belgian, black, brazilian, british, buddhist,
    bulgarian, canadian, catholic, caucasian, chinese, christian, colombian, croatian,
    cuban, czech, danish, democrat, dutch, egyptian, english, estonian, ethiopian,
    filipino, finnish, french, german, greek, haitian, hindu, hispanic, hungarian,
    icelandic, indian, indonesian, iranian, iraqi, irish, israeli, italian, jamaican,
    japanese, jewish, korean, kurdish, latina, latino, latvian, lebanese, lithuanian,
    malaysian, mexican, mormon, moroccan, muslim, native american, nigerian, norwegian,
    pakistani, palestinian, persian, peruvian, polish, portuguese, protestant, republican,
    romanian, russian, saudi, scottish, serbian, sikh, slovak, somali, spanish, swedish,
    swiss, syrian, taiwanese, thai, turkish, ukrainian, venezuelan, vietnamese, welsh
    """
)

ORG_SUFFIXES = _words(
    """
    inc inc. incorporated ltd ltd. limited llc llp plc corp corp. corporation co co.
    company gmbh ag sa s.a. sarl srl spa bv nv oy ab kg group holdings partners associates
    bank university college school academy institute foundation trust society association
    hospital clinic infirmary hospice center centre laboratories labs pharmaceuticals
    pharma technologies systems solutions services agency ministry council committee
    church enterprises industries ventures consulting insurance
    """
)

HEALTH_FACILITY_WORDS = _words(
    "hospital hospitals clinic clinics infirmary hospice medical health healthcare center centre"
)

# Whole-word street types that follow the street name ("Baker Street") or precede it
# ("Rue de Rivoli"), and name endings that mark a street in one compound word
# ("Hammarvägen", "Brixtonlaan", "Hauptstraße").
STREET_AFTER = _words(
    """
    street st st. road rd rd. avenue ave ave. boulevard blvd blvd. lane ln ln. drive dr
    dr. court ct ct. place pl pl. square sq terrace way parkway pkwy highway hwy circle
    cir trail crescent close alley row plaza walk gardens grove hill
    """
)
STREET_BEFORE = _words(
    """
    rue avenue av. boulevard bd chemin allée impasse via viale piazza corso largo vicolo
    calle avenida avda paseo plaza camino carrer rua travessa praça alameda ul. ulica al.
    aleja plac os. ulitsa prospekt
    """
)
STREET_ENDINGS = (
    "strasse", "straße", "str.", "gasse", "weg", "platz", "allee", "damm", "ring", "vej",
    "gade", "gatan", "vägen", "väg", "gata", "veien", "gate", "laan", "straat", "plein",
    "dreef", "kade", "singel", "steeg", "katu", "kuja", "tie", "polku", "väylä", "kaari",
    "utca", "út", "tér", "ulica", "street", "road", "avenue",
)
UNIT_WORDS = _words("suite apt apt. apartment unit flat floor room bldg building box")

# Capitalised words that are not names: structure words of titles and clinical scales.
NOT_NAMES = _words(
    """
    i i'm i've i'll i'd ok okay type stage grade class phase step part chapter section
    figure table appendix version level mr mrs ms dr prof hi hello dear thanks regards
    yes no please bot user assistant system patient subject re fw fwd note
    """
)

# Software and standards that look like proper nouns but are not personal data.
PUBLIC_TERMS = _words(
    """
    python java javascript typescript rust golang kotlin swift ruby php perl haskell linux
    unix ubuntu debian fedora windows macos ios android github gitlab docker kubernetes
    postgresql postgres mysql sqlite mongodb redis kafka nginx apache json yaml html css
    http https sql api excel powerpoint openai chatgpt gpt llama pytorch tensorflow numpy
    pandas react django flask wikipedia youtube internet bluetooth wifi covid
    hba1c egfr pco2 po2 spo2 fev1 mmhg ldl-c hdl-c nt-probnp troponin
    """
)

# Head nouns that turn a capitalised name into an eponym ("Babinski sign",
# "Crohn's disease"), which names a medical concept rather than a person.
EPONYM_HEADS = _words(
    """
    disease diseases syndrome syndromes sign signs reflex reflexes score scores criteria
    criterion scale scales test tests maneuver manoeuvre palsy disorder phenomenon
    classification index rule rules staging stage equation formula procedure operation
    lymphoma sarcoma tumor tumour ulcer node nodes triad law method protocol questionnaire
    """
)

MEDICAL_CONDITIONS = _phrases(
    """
    acne, addison's disease, adhd, aids, alcoholism, allergy, alzheimer's, alzheimer's disease,
    amyotrophic lateral sclerosis, als, anemia, anaemia, aneurysm, angina, anorexia, anxiety,
    apnea, appendicitis, arrhythmia, arthritis, asthma, atrial fibrillation, autism,
    bipolar disorder, breast cancer, bronchitis, bulimia, cancer, cardiomyopathy,
    carcinoma, cataract, celiac disease, cellulitis, cerebral palsy, chlamydia, cholera,
    chronic kidney disease, ckd, cirrhosis, colitis, copd, coronary artery disease, covid-19,
    crohn's disease, crohn's, cystic fibrosis, dementia, depression, dermatitis, diabetes,
    depressive disorder, major depressive disorder,
    type 1 diabetes, type 2 diabetes, dvt, deep vein thrombosis, eczema, emphysema,
    endometriosis, epilepsy, fibromyalgia, gastritis, gerd, glaucoma, gonorrhea, gout,
    graves' disease, guillain-barré syndrome, guillain-barre syndrome, hashimoto's,
    heart attack, heart failure, chf, hemophilia, hepatitis, hepatitis b, hepatitis c,
    herpes, hiv, hodgkin's lymphoma, huntington's disease, hypertension,
    hyperthyroidism, hypothyroidism, ibs, infertility, influenza, insomnia, kidney disease,
    leukemia, leukaemia, lou gehrig's disease, lupus, lyme disease, lymphoma, malaria,
    measles, melanoma, meningitis, migraine, multiple sclerosis, myocardial infarction,
    myeloma, obesity, ocd, osteoarthritis, osteoporosis, pancreatitis, parkinson's,
    parkinson's disease, pneumonia, prostate cancer, psoriasis, ptsd, pulmonary embolism,
    rheumatoid arthritis, schizophrenia, sclerosis, scoliosis, sepsis, sickle cell anemia,
    sickle cell disease, sinusitis, sleep apnea, stroke, syphilis, tinnitus, tuberculosis,
    tumor, tumour, ulcerative colitis, urinary tract infection, uti, vertigo, wilson's disease,
    lung cancer, colon cancer, colorectal cancer, pancreatic cancer, ovarian cancer,
    cervical cancer, skin cancer, thyroid cancer, bladder cancer, kidney stones, gallstones,
    hernia, sarcoidosis, preeclampsia, gestational diabetes, miscarriage, pregnancy,
    substance use disorder, opioid use disorder, eating disorder, panic disorder,
    post-traumatic stress disorder, attention deficit hyperactivity disorder
    """
)

MEDICATIONS = _words(
    """
    acetaminophen paracetamol ibuprofen naproxen aspirin diclofenac celecoxib tramadol
    oxycodone hydrocodone morphine fentanyl codeine methadone buprenorphine naloxone
    metformin insulin glipizide glimepiride sitagliptin empagliflozin dapagliflozin
    canagliflozin liraglutide semaglutide dulaglutide tirzepatide pioglitazone lisinopril
    enalapril ramipril losartan valsartan irbesartan candesartan amlodipine nifedipine
    diltiazem verapamil metoprolol atenolol bisoprolol carvedilol propranolol
    hydrochlorothiazide chlorthalidone furosemide bumetanide spironolactone eplerenone
    atorvastatin simvastatin rosuvastatin pravastatin lovastatin ezetimibe warfarin
    apixaban rivaroxaban dabigatran edoxaban heparin enoxaparin clopidogrel ticagrelor
    prasugrel digoxin amiodarone nitroglycerin levothyroxine methimazole
    propylthiouracil prednisone prednisolone methylprednisolone dexamethasone
    hydrocortisone budesonide fluticasone albuterol salbutamol salmeterol formoterol
    tiotropium montelukast omeprazole esomeprazole pantoprazole lansoprazole ranitidine
    famotidine ondansetron metoclopramide loperamide sertraline fluoxetine paroxetine
    citalopram escitalopram venlafaxine duloxetine bupropion mirtazapine trazodone
    amitriptyline nortriptyline lithium quetiapine olanzapine risperidone aripiprazole
    haloperidol clozapine lamotrigine valproate levetiracetam carbamazepine phenytoin
    topiramate gabapentin pregabalin diazepam lorazepam alprazolam clonazepam zolpidem
    melatonin methylphenidate amphetamine atomoxetine donepezil memantine levodopa
    carbidopa pramipexole ropinirole sumatriptan rizatriptan amoxicillin ampicillin
    penicillin azithromycin clarithromycin doxycycline ciprofloxacin levofloxacin
    cephalexin ceftriaxone vancomycin clindamycin metronidazole nitrofurantoin
    trimethoprim sulfamethoxazole fluconazole acyclovir valacyclovir oseltamivir
    tenofovir emtricitabine dolutegravir methotrexate hydroxychloroquine adalimumab
    etanercept infliximab rituximab tamoxifen letrozole anastrozole trastuzumab
    pembrolizumab nivolumab cisplatin carboplatin paclitaxel doxorubicin imatinib
    allopurinol colchicine febuxostat alendronate finasteride tamsulosin sildenafil
    tadalafil oxybutynin estradiol progesterone testosterone medroxyprogesterone
    isotretinoin cetirizine loratadine diphenhydramine epinephrine ozempic wegovy
    mounjaro lipitor zoloft prozac xanax eliquis xarelto humira keytruda synthroid
    lasix coumadin plavix nexium advil tylenol motrin
    """
)

FINANCIAL_TERMS = _phrases(
    """
    bank account, account balance, routing number, sort code, swift code, bic, wire transfer,
    salary, income, paycheck, payslip, tax return, mortgage, loan, debt, credit score,
    credit report, bankruptcy, overdraft, pension, investment portfolio,
    brokerage account, net worth, payroll, alimony, child support, foreclosure, tax id,
    credit card, debit card, cvv
    """
)

_SUFFIX_RULES: tuple[tuple[str, str], ...] = (
    ("ies", "y"), ("ied", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"),
    ("ing", ""), ("ing", "e"), ("ly", ""), ("er", ""), ("er", "e"), ("est", ""),
    ("est", "e"),
)


@functools.lru_cache(maxsize=1 << 16)  # pure; names recur, and misses try every rule
def is_common_word(lower: str, depth: int = 2) -> bool:
    """Whether ``lower`` (a lower-case token) is an ordinary English word or inflection.

    Inflections stack ("customers" = "custom" + "er" + "s"), so up to ``depth``
    suffixes are stripped.
    """
    if lower in _ENGLISH:
        return True
    if depth == 0:
        return False
    for suffix, repl in _SUFFIX_RULES:
        if lower.endswith(suffix) and len(lower) > len(suffix) + 2:
            stem = lower[: -len(suffix)]
            if is_common_word(stem + repl, depth - 1):
                return True
            if stem[-1] == stem[-2] and stem[:-1] in _ENGLISH:
                return True
    return False
