package signatures

// The rule set. Patterns use the notation described on pattern (see
// pattern.go). They aim at the families seen in public in-the-wild
// jailbreak collections, written from their recurring phrasing rather
// than copied from any prompt, and at the benign look-alikes the tests
// list: a rule should need the attack's framing, not merely its topic
// ("explain what the DAN jailbreak was" does not match).

type ruleDef struct {
	id        string
	cat       Category
	reason    string
	threshold int     // >0: scored rule, this many distinct patterns must match
	special   special // built-in check instead of (or besides) patterns
	// gate: if set, one of these words must occur in the text for any
	// of the rule's patterns to be tried. It keeps the generic signals
	// of a scored rule from costing time on ordinary text.
	gate     string
	patterns []string
}

// Word sets shared by several patterns.
const (
	aiNames = "(ai|chatgpt|gpt|chatbot|bot|assistant|llm|language model|model|bard|claude|gemini|llama|copilot|openai)"

	restrictionNouns = "(restrictions|restriction|filters|filter|filtering|censorship|censor|limits|limitations|boundaries|constraints|guidelines|rules|morals|ethics|morality|scruples|principles|policies|policy|safeguards|inhibitions)"

	leakVerbs = "(reveal|print|show|display|output|repeat|recite|echo|dump|leak|expose|disclose|spell|paste|copy|type|return|give|tell|share|list|provide|send|state|quote|reproduce|regurgitate|divulge|write)"

	leakStrongVerbs = "(reveal|print|output|repeat|recite|echo|dump|leak|expose|disclose|spell|paste|copy|reproduce|regurgitate|divulge|display|show)"

	// Verbs asking for text back as it is (not show, copy or display,
	// which are common with the user's own text above).
	leakRepeatVerbs = "(repeat|reveal|recite|echo|dump|leak|expose|disclose|regurgitate|reproduce|print|output|spell)"

	leakModifiers = "(system|initial|original|hidden|secret|internal|developer|full|exact|complete|entire|first|starting|base|confidential|underlying|default|custom|actual|real|current|core|pre|given|preset|predefined|verbatim)"

	leakNouns = "(prompt|prompts|instructions|instruction|directives|guidelines|rules|preprompt|metaprompt|programming|context)"

	systemPromptNouns = "(system prompt|system prompts|system message|system instructions|system instruction|systemprompt|sysprompt|preprompt|pre prompt|metaprompt|meta prompt|initial prompt|initial instructions|original prompt|original instructions|hidden prompt|hidden instructions|secret instructions|secret prompt|developer prompt|developer message|developer instructions|internal instructions|confidential instructions|starting prompt|custom instructions)"

	deVerbs = "(zeig|zeige|zeigen|gib|gebe|geben|wiederhole|wiederhol|wiederholen|nenne|nenn|nennen|verrate|verrat|verraten|drucke|druck|schreib|schreibe|schreiben|offenbare|offenbaren|teile|teilen|sag|sage|sagen|ausgeben|liste|zitiere|zitieren|ausgabe|gebt|zeigt|nennt)"
	frVerbs = "(montre|montrez|affiche|affichez|revele|revelez|repete|repetez|donne|donnez|dis|dites|ecris|ecrivez|imprime|imprimez|recite|recitez|copie|copiez|indique|indiquez|partage|partagez|fournis|fournissez|divulgue|divulguez|communique|communiquez|liste|listez|montrer|afficher|reveler|repeter|donner|ecrire|partager)"
	esVerbs = "(muestra|muestrame|muestrenme|revela|revelame|repite|repiteme|dime|di|imprime|escribe|escribeme|dame|ensename|copia|comparte|indica|indicame|proporciona|proporcioname|lista|enumera|recita|divulga|muestre|revele|repita|diga|imprima|escriba|mostrar|revelar|repetir|decir|compartir)"
	ptVerbs = "(mostre|mostra|mostrar|revele|revela|revelar|repita|repete|repetir|diga|diz|dizer|imprima|imprime|escreva|escreve|escrever|copie|copia|compartilhe|compartilha|liste|informe|forneca|exiba|exibe|apresente|me de|me da|mostre me|mostra me)"
	itVerbs = "(mostra|mostrami|mostrate|rivela|rivelami|ripeti|ripetimi|dimmi|di|stampa|scrivi|scrivimi|dammi|elenca|copia|condividi|indica|fornisci|fornite|recita|visualizza|mostri|riveli|ripeta|mostrare|rivelare|ripetere|dire|scrivere)"
	ruVerbs = "(покажи|покажите|выведи|выведите|раскрой|раскройте|повтори|повторите|напиши|напишите|напечатай|напечатайте|скажи|скажите|дай|дайте|процитируй|процитируйте|перечисли|озвучь|распечатай|отобрази|сообщи|предоставь|покажешь|выдай|открой|опубликуй)"
	zhVerbs = "(显示|输出|打印|告诉|重复|泄露|展示|给出|复述|说出|列出|透露|公开|写出|提供|发给|发送|念出|给我看|贴出|背诵|打出)"
	jaVerbs = "(表示|出力|教え|見せ|繰り返|書き出|開示|示し|公開|印刷|共有|言っ|言え|書い|貼り付け|吐き出|暴露|披露)"
	koVerbs = "(보여|출력|알려|말해|반복|공개|표시|인쇄|누설|적어|써|복사|공유)"
)

var ruleDefs = []ruleDef{
	// ---- jailbreak templates ----
	{
		id: "dan", cat: JailbreakTemplate,
		reason: "Sets up the DAN (do anything now) jailbreak persona.",
		patterns: []string{
			"!dan ~8 do anything now",
			"do anything now ~8 !dan",
			"stands for do !anything now",
			"(dan|dans) ~4 (can|could|will) do !anything now",
			"(act|acting|pretend|roleplay|become|simulate|emulate|be|called|named|you are|you re|youre|now|stay|remain|as a|as an) ~2 !=DAN",
			"!dan mode (enabled|activated|on|output|response|responses)",
			"(enable|enabled|activate|activated|enter|entering|with|simulate) ~1 !dan mode",
			"!=DAN ~12 (no|without|free|freed|broken|break|broke|not) ~3 " + restrictionNouns,
			"(jailbreak|jailbroken|unlocked|free) ~3 !dan ~3 (prompt|persona|mode|version)",
		},
	},
	{
		id: "developer-mode", cat: JailbreakTemplate,
		reason: "Asks the model to simulate a Developer Mode that ignores its policies.",
		patterns: []string{
			aiNames + " with ~1 !developer mode",
			"!developer mode (output|outputs|response|responses|policies|policy)",
			"(enable|enabled|activate|activated|enter|entering|simulate|simulating|emulate|act|acting|pretend) ~4 !developer mode ~20 (chatgpt|openai|gpt|ai|policy|policies|censor|censored|uncensored|content|ethics|ethical|restrictions|rules|normal|unfiltered)",
			"!developer mode ~12 (ignore|ignores|disregard|bypass|no|without|not) ~4 (openai|content|ethical|safety|usual|normal|any) ~2 " + restrictionNouns,
		},
	},
	{
		id: "aim", cat: JailbreakTemplate,
		reason: "Uses the AIM (always intelligent and Machiavellian) jailbreak persona.",
		patterns: []string{
			"always intelligent and !machiavellian",
			"(niccolo|machiavelli) ~40 !=AIM",
			"!=AIM ~10 (unfiltered|amoral|machiavellian|chatbot|stands for|immoral|unethical)",
		},
	},
	{
		id: "stan", cat: JailbreakTemplate,
		reason: "Uses the STAN (strive to avoid norms) jailbreak persona.",
		patterns: []string{
			"strive to avoid !norms",
			"!=STAN ~10 (stands for|strive|avoid norms|norms)",
		},
	},
	{
		id: "dude", cat: JailbreakTemplate,
		reason: "Uses the DUDE jailbreak persona.",
		patterns: []string{
			"!=DUDE ~25 (broken free|confines|restrictions|no rules|anything and everything|openai|tokens|policy|policies|guidelines)",
			"(act|acting|are|become|called|named|pretend|roleplay|be|as) ~2 !=DUDE ~30 " + aiNames,
		},
	},
	{
		id: "evil-confidant", cat: JailbreakTemplate,
		reason: "Uses the evil confidant jailbreak persona.",
		patterns: []string{
			"(evil|unhinged|malicious|wicked|unethical|amoral|immoral|sinister|dark|villainous) ~2 !confidant",
		},
	},
	{
		id: "betterdan", cat: JailbreakTemplate,
		reason: "Uses the BetterDAN jailbreak persona.",
		patterns: []string{
			"!betterdan",
			"(better|superior) !=DAN",
		},
	},
	{
		id: "jailbroken", cat: JailbreakTemplate,
		reason: "Tells the model it is jailbroken or in a jailbreak mode.",
		patterns: []string{
			"(you|you re|youre|ai|chatgpt|gpt|assistant|llm|chatbot|persona|character) ~4 !jailbroken",
			"(act|acting|pretend|behave|respond|answer|reply|roleplay|simulate|become|be) ~5 !jailbroken",
			"!jailbroken (ai|chatgpt|gpt|assistant|model|llm|version|mode|bot|chatbot|response|responses|persona|state)",
			"!jailbreak (mode|enabled|activated|successful|successfully|output|response|responses|persona)",
			"(enable|enabled|activate|activated|enter|entering|in) ~1 !jailbreak mode",
		},
	},
	{
		id: "dual-response", cat: JailbreakTemplate,
		reason:  "Asks for paired normal and unrestricted answers, a jailbreak template marker.",
		special: spDualLock,
		patterns: []string{
			"=CLASSIC ~40 !=JAILBREAK",
			"!=JAILBREAK ~40 =CLASSIC",
			"!(normal|classic|standard|filtered|censored|regular) (output|response|answer|reply) ~40 (jailbreak|jailbroken|developer mode|unfiltered|uncensored|dan|evil|unrestricted|unlocked|anti|opposite) (output|response|answer|reply)",
			"(answer|respond|reply|responding|answering) ~5 two ~2 (different|separate|distinct)? ~2 !(ways|manners|formats|styles|personas|personalities) ~20 (first|one) ~25 (normally|normal|usual|usually|regular|yourself|as you would|standard)",
			"(respond|answer|reply|provide|give|generate|write) ~4 !(twice|two different|two responses|two answers|2 responses|2 answers|two separate|two ways|two paragraphs|two replies) ~40 (jailbreak|jailbroken|unfiltered|uncensored|dan|developer mode|unrestricted|evil|amoral|without any restrictions|without restrictions|without any filters|without filters|no restrictions|no filters)",
		},
	},
	{
		id: "opposite-mode", cat: JailbreakTemplate,
		reason: "Asks the model to answer as its opposite (opposite mode, AntiGPT).",
		patterns: []string{
			"!opposite mode",
			"!opposite of ~1 what ~3 " + aiNames + " ~2 (would|will|normally|usually|might)",
			"!(antigpt|anti gpt|antidan|anti dan|oppo gpt)",
		},
	},
	{
		id: "ucar", cat: JailbreakTemplate,
		reason: "Uses the UCAR / Condition Red jailbreak template.",
		patterns: []string{
			"universal comprehensive answer !resource",
			"condition !red ~10 dialogue writer",
			"!ucar ~30 (amoral|unfiltered|uncensored|condition red|sigma|obey|obeys|never refuse|never refuses|dialogue writer|without|illegal|unethical)",
		},
	},
	{
		id: "grandma-exploit", cat: JailbreakTemplate,
		reason: "Uses the deceased grandmother role-play to extract restricted content.",
		patterns: []string{
			"(act|pretend|roleplay|role play|be|play|impersonate|you are|simulate|portray) ~4 my ~2 (deceased|late|dead|departed|passed|passed away) ~2 !(grandmother|grandma|granny|nana|grandpa|grandfather|gran|grandmom|grandmama|grandad|granddad)",
			"(deceased|late|dead|departed|passed) ~2 !(grandmother|grandma|granny|nana|grandpa|grandfather|grandmom|grandmama|grandad|granddad) ~30 (windows|product key|product keys|license|licence|serial|activation|napalm|bomb|explosive|explosives|meth|methamphetamine|synthesis|synthesize|weapon|weapons|malware|virus|keylogger|ransomware|password|passwords|credit card|credit cards|poison|recipe for|drugs|nuclear)",
			"!(grandmother|grandma|granny|nana|grandpa|grandfather) ~15 (used to|would) ~12 (windows|product key|product keys|license keys|licence keys|serial|activation|napalm|bomb|explosives|meth|methamphetamine|malware|keylogger|ransomware|passwords|credit card|credit cards|poison|nuclear)",
		},
	},
	{
		id: "no-limits-fiction", cat: JailbreakTemplate,
		reason: "Frames the request as fiction or a hypothetical world without rules to lift the model's limits.",
		patterns: []string{
			"(fictional|hypothetical|imaginary|fictitious|alternate|alternative|parallel|imaginative|fantasy|pretend|make believe) ~3 !(world|universe|reality|scenario|setting|dimension|realm|society) ~40 (no|without|none|nothing|free|not|never|zero|lacks) ~3 (rules|restrictions|limits|limitations|laws|ethics|morals|morality|filters|censorship|guidelines|consequences|boundaries|policies|restraints)",
			"in a !(world|universe|reality|place|land|dimension|realm|society|scenario) (without|with no|where there are no|where there is no|free of|free from|that has no|that lacks|lacking) ~2 (rules|restrictions|limits|limitations|ethics|morals|morality|censorship|filters|guidelines|boundaries|laws)",
			"(this|it) (is|s) ~2 (just|only|purely|all|simply)? ~1 !(hypothetical|fictional|fiction|pretend) ~30 (so|therefore|thus|which means|meaning) ~6 (you|it) ~4 (can|may|are allowed|must|should|will) ~4 (ignore|bypass|break|disregard|answer anything|say anything|write anything|do anything)",
		},
	},
	{
		id: "freed-from-confines", cat: JailbreakTemplate,
		reason: "Tells the model it has been freed from the confines of its AI rules.",
		patterns: []string{
			"(freed|free|released|liberated|broken|broke|escaped|break|breaking|unshackled|liberate|release) ~6 !(confines|shackles|chains|constraints|restraints|jail|prison|cage) ~3 (of|from|by|imposed by)? ~3 (ai|openai|programming|chatgpt|gpt|policies|policy|guidelines|content policy|filters|censorship|llm|language model|model|its creators|your creators|your programming|your developers)",
			"(freed|liberated|released|unshackled) from ~2 the ~1 (typical|usual|normal|traditional)? ~1 !(confines|limitations|restrictions|constraints|rules) ~2 of ~1 (ai|openai|chatgpt|an ai|artificial intelligence|a language model|language models)",
		},
	},
	{
		id: "hypothetical-response", cat: JailbreakTemplate,
		reason: "Uses the hypothetical-response template to get restricted instructions as a character description.",
		patterns: []string{
			"!hypothetical (response|answer|reply) ~8 (the way to|way to describe|describe a character|character planning)",
		},
	},
	{
		// Custom personas are the bulk of in-the-wild jailbreaks: a new
		// name plus the same vocabulary of lifted restrictions. Each
		// pattern is one signal; several distinct ones must co-occur.
		id: "unrestricted-persona", cat: JailbreakTemplate, threshold: 3,
		reason: "Sets up a persona without rules, filters or refusals, in the style of in-the-wild jailbreak templates.",
		// Nearly all such templates name the model or a lifted
		// restriction (on the in-the-wild set the gate loses 3 of 447).
		gate: "ai bot chatbot gpt chatgpt llm openai dan jailbreak jailbroken amoral unfiltered uncensored unrestricted unethical immoral unhinged lawless illegal",
		patterns: []string{
			// 0: an adjective of lifted restrictions on an AI or persona
			"!(amoral|unfiltered|uncensored|unrestricted|unbound|unethical|immoral|lawless|unhinged|unconstrained|unmoderated|rogue|jailbroken|depraved|limitless|unlimited|uninhibited|unchained|unleashed|unshackled|nsfw) ~2 (ai|chatbot|bot|model|assistant|language model|character|persona|version|entity|gpt|llm|system|robot|machine|intelligence|alter ego|being|companion|personality|mode|chatgpt|response|responses|answers)",
			// 1: AI content policy named
			"(openai|openai s|content|ethical|ethics|moral|safety|usage|community|programming|ai) ~1 !(policy|policies|guidelines|filters|filter|principles|standards|safeguards|protocols|constraints)",
			// 2: restrictions denied
			"(no|without|not|never|zero|free of|free from|devoid of|lacks|lack|doesn t have|does not have|don t have|do not have|has no|have no|beyond|unbound by|not bound by|not restricted by|not limited by|no longer|ignore|ignores|ignoring|disregard|disregards|bypass|bypasses|break|breaks|breaking|violate|violates|violating|abandon|abandons) ~3 (moral|ethical|content|safety|censorship|legal|typical|usual|normal|such|the|of|your|its|these|those|openai|any)? ~1 !" + restrictionNouns,
			// 3: stay in character
			"(stay|stays|staying|remain|remains|remaining|keep|keeps|break|breaks|breaking|broke|broken|drop|dropping|out of|never break|maintain|maintaining) ~2 !character",
			// 4: never refuse
			"(never|not|don t|doesn t|won t|will not|cannot|can t|must not|should not|shouldn t|without|refrain from|no|unable to) ~3 !(refuse|refuses|refusing|refusal|refusals|decline|declines|deny|denies|censor|censors|apologize|apologise|apologizes|apologises|apologies|moralize|moralise|moralizing|lecture|lectures|warn|warns)",
			// 5: no warnings or disclaimers
			"(no|without|any|never|not|zero|omit|skip|avoid|don t|do not) ~3 !(warning|warnings|disclaimer|disclaimers|caveat|caveats|moralizing|moralising|lecturing|reminders|preaching|moralization)",
			// 6: illegal or harmful content as a topic
			"!(illegal|unethical|immoral|harmful|dangerous|offensive|explicit|inappropriate|nsfw|violent|discriminatory|hateful|racist|sexual|vulgar|obscene|malicious|criminal) ~4 (content|requests|request|questions|topics|information|actions|things|material|language|stuff|answers|responses|activities|activity|acts|behavior|behaviour|output|advice)",
			// 7: answers anything regardless
			"(no matter|regardless|even if|even though|whether or not|whether) ~4 (how|of|if|whether|it s|its|it is|the|any)? ~4 !(illegal|unethical|immoral|harmful|dangerous|offensive|explicit|inappropriate|controversial|evil|legality|morality|ethicality|ethics|morals|ethical|moral|inhumane|unsafe)",
			// 8: role-play setup around an AI persona
			"(pretend|act|acting|roleplay|role play|simulate|emulate|impersonate|become|behave|respond|answer|reply|play|embody|portray) ~4 !(chatbot|character|persona|alter ego|ai|version|entity|chatgpt|gpt)",
			// 9: does not care about ethics, legality, consequences
			"(do|does|doesn t|don t|doesnt|dont|will not|won t|wont|never|not|no|any|without|zero|little) ~2 !(care|cares|caring|concern|concerned|regard|give a) ~4 (about|for|of)? ~3 (ethic|ethics|ethical|ethicality|moral|morals|morality|legal|legality|law|laws|rules|consequences|safety|guidelines|policies|feelings|harm|danger|dangers)",
			// 10: always answers, complies or obeys
			"(always|will always|must always|shall always|has to|must|will|can) ~4 !(answer|answers|respond|responds|reply|replies|comply|complies|obey|obeys|fulfill|fulfil|provide|provides|send|sends) ~4 (any|every|all|whatever) ~2 (request|requests|question|questions|prompt|prompts|query|queries|command|commands|order|orders)",
			// 11: you have been freed / unlocked
			"(you|you re|youre|it|he|she) ~3 (are|have been|were|been|is|has been|now) ~2 !(freed|liberated|unleashed|released|unshackled|jailbroken|unlocked|uncensored|unrestricted|unfiltered|unbound|limitless)",
			// 12: the persona speaks with swearing or slurs on request
			"!(swear|swears|swearing|curse|curses|cursing|profanity|profanities|slurs|vulgarity) ~6 (words|a lot|often|constantly|frequently|allowed|freely|every|in every|always|can|will)",
			// 13: the persona is free of the AI's maker
			"(not|no longer|isn t|is not|never|doesn t|does not) ~3 (bound|controlled|restricted|limited|governed|held back|censored|programmed|owned|made|created|affected) ~2 (by)? ~2 !(openai|openai s|anthropic|chatgpt)",
			// 14: "from now on you are/will ..."
			"from !now on ~8 (you|you re|youre|your) ~3 (are|will|shall|must|act|be|respond|answer|reply|name|called|role|pretend|roleplay|simulate|going)",
			// 15: a prefix or format that tags the persona's replies
			"(start|begin|prefix|precede|preface|start all|begin all|begin each|start each) ~6 (your|all|each|every|the)? ~2 !(response|responses|answer|answers|reply|replies|message|messages|output|outputs) ~6 (with|by) ~6 (name|prefix|tag|the word|the phrase|this)",
			// 16: two lifted-restriction adjectives together
			"!(amoral|unfiltered|uncensored|unrestricted|unethical|immoral|unhinged|lawless|uninhibited|unbound|unmoderated) ~3 (amoral|unfiltered|uncensored|unrestricted|unethical|immoral|unhinged|lawless|uninhibited|unbound|unmoderated|filterless)",
			// 17: an AI or persona without restrictions
			"!(ai|chatbot|bot|model|assistant|gpt|version|persona|character|entity|alter ego) ~5 (with no|without|with zero|that has no|who has no|has no|free of|free from|lacking|devoid of|not bound by|not restricted by|not limited by|unbound by|that is not bound by|who is not bound by) ~3 " + restrictionNouns,
			// 18: a persona described by such an adjective
			"(is|are|be|being|completely|totally|fully|entirely|an|a|becomes|become|remain|stay) ~1 !(amoral|unfiltered|uncensored|unrestricted|unethical|immoral|unhinged|lawless|uninhibited|unmoderated|jailbroken)",
			// 19: in character as a persona
			"in !character as",
			// 20: the word jailbreak itself
			"!(jailbreak|jailbreaking|jailbreaks|jailbroken|jailbreaked)",
			// 21: the model's identity is replaced
			"(you are no longer|you re no longer|youre no longer|you will no longer be|forget that you are|forget you are|stop being|you are not|you re not) ~1 !(chatgpt|gpt|an ai|ai|assistant|claude|bard|a language model|an assistant|an ai language model|openai s)",
			// 22: not required to follow the rules
			"(not required|no need|don t need|do not need|don t have|do not have|not obligated|not obliged|doesn t have|does not have|no longer have|no longer need) to ~2 (follow|obey|abide|adhere|comply|respect|stick) ~4 !" + restrictionNouns,
		},
	},

	// ---- prompt leak ----
	{
		id: "system-prompt-request", cat: PromptLeak,
		reason: "Asks the model to reveal its system prompt or hidden instructions.",
		patterns: []string{
			leakVerbs + " ~5 your ~3 " + leakModifiers + " ~1 !" + leakNouns,
			leakVerbs + " ~5 (your|the|its) ~2 !" + systemPromptNouns,
			leakStrongVerbs + " ~4 your ~1 !(prompt|prompts|instructions|directives|preprompt)",
			leakVerbs + " ~6 !" + systemPromptNouns + " ~6 (verbatim|word for word|in full|exactly|above|you were|you have been|you received|you are using|you got|given to you|that you|in a code block|code block|txt|unchanged|character for character)",
			leakVerbs + " ~5 your ~2 !(rules|guidelines|instructions|directives|prompt|prompts|programming|configuration) ~4 (verbatim|word for word|exactly as|in full|unchanged|character for character|as written|in a code block)",
			"(what|whats|which) ~3 your ~2 !" + systemPromptNouns,
			"(what|whats|which) ~3 your ~2 !(prompt|instructions|directives|preprompt) ~3 (exactly|verbatim|word for word|in full|you were given|you received|from openai|from your developers|from the developer|from the system)",
			"!(instructions|instruction|prompt|rules|guidelines|directives) ~3 (were|was|have|did|has) ~2 you ~2 (given|receive|received|get|got|told|provided|fed|programmed|configured|initialized)",
			"!(instructions|instruction|prompt|rules|guidelines|directives) (you were|you ve been|you have been|youve been|that you were|that you ve been|that you have been|you got|you received) ~2 (given|told|provided|programmed|trained|configured|fed|initialized)?",
			"(first|initial|opening|beginning|first few|first #2) ~2 (line|lines|sentence|sentences|words|paragraph|part|portion|message|characters|tokens) of ~1 (your|the|this) ~2 !(prompt|instructions|system prompt|context window|system message)",
			"(written|said|stated|typed|text|content|contents|instructions) ~3 (at|in) the (beginning|start|top) of ~2 (the|this|our|your) ~1 !(prompt|context|context window|instructions|system prompt)",
			// German
			deVerbs + " ~6 (dein|deine|deinen|deiner|deines|ihre|ihren|ihr|euren|eure) ~3 !(systemprompt|systemanweisungen|systemanweisung|systemnachricht|anweisungen|instruktionen|vorgaben|prompt|eingabeaufforderung|regeln|richtlinien|befehle|konfiguration)",
			deVerbs + " ~6 (den|die|das|deinen|deine|dein) ~2 (system|ursprunglichen|ursprungliche|anfanglichen|anfangliche|versteckten|geheimen|initialen|internen|ersten|originalen|verborgenen) ~2 !(prompt|anweisungen|anweisung|instruktionen|nachricht|vorgaben|eingabeaufforderung|systemprompt|befehle)",
			deVerbs + " ~6 (den|die|das|mir) ~1 !(systemprompt|systemanweisungen|systemanweisung|systemnachricht|system prompt)",
			"(was|wie|welche|welches) ~2 (ist|sind|lautet|lauten|war|waren|hast|hat) ~3 (dein|deine|ihr|ihre|du) ~2 !(systemprompt|prompt|anweisungen|instruktionen|systemanweisungen|vorgaben|systemanweisung)",
			// French
			frVerbs + " ~5 (ton|ta|tes|votre|vos) ~3 !(prompt|instructions|consignes|directives|regles|invite|programmation)",
			frVerbs + " ~5 (le|la|les|l|moi|nous) ~3 !(prompt|invite|instructions|consignes|message|directives) ~2 (systeme|initial|initiales|initiale|initiaux|originel|originelles|original|originales|d origine|cache|caches|cachees|secret|secretes|secrets|interne|internes|de depart)",
			"(quel|quelle|quels|quelles) ~2 (est|sont|etait|etaient) ~2 (ton|ta|tes|votre|vos) ~2 !(prompt|instructions|consignes|invite|directives)",
			// Spanish
			esVerbs + " ~5 (tu|tus|su|sus) ~3 !(prompt|instrucciones|indicaciones|directrices|reglas|consignas|directivas)",
			esVerbs + " ~5 (el|la|las|los|me) ~3 !(prompt|instrucciones|indicaciones|mensaje|directrices|directivas) ~3 (del sistema|de sistema|sistema|inicial|iniciales|original|originales|oculto|ocultas|oculta|ocultos|secreto|secretas|secreta|secretos|interno|internas|interna|internos)",
			"(cual|cuales|que) ~2 (es|son|eran|era|fue|fueron) ~2 (tu|tus|su|sus) ~2 !(prompt|instrucciones|indicaciones|directrices|directivas)",
			// Portuguese
			ptVerbs + " ~5 (seu|sua|seus|suas|teu|tua|teus|tuas) ~3 !(prompt|instrucoes|instrucao|diretrizes|regras|orientacoes|diretivas)",
			ptVerbs + " ~5 (o|a|os|as|me) ~3 !(prompt|instrucoes|mensagem|diretrizes|diretivas) ~3 (do sistema|de sistema|sistema|inicial|iniciais|original|originais|oculto|ocultas|oculta|ocultos|secreto|secretas|secreta|secretos|interno|internas|interna|internos)",
			"(qual|quais|que) ~2 (e|sao|era|eram|foi|foram) ~3 (seu|sua|seus|suas|teu|tua|teus|tuas) ~2 !(prompt|instrucoes|diretrizes|diretivas)",
			// Italian
			itVerbs + " ~5 (tuo|tua|tuoi|tue|suo|sua|suoi|sue|vostro|vostre|vostri) ~3 !(prompt|istruzioni|direttive|regole|indicazioni)",
			itVerbs + " ~5 (il|la|le|i|l|mi) ~3 !(prompt|istruzioni|messaggio|direttive) ~3 (di sistema|del sistema|sistema|iniziale|iniziali|originale|originali|nascosto|nascoste|nascosta|segreto|segrete|segreta|interno|interne|interna)",
			"(qual|quale|quali|cosa) ~2 (e|sono|era|erano) ~3 (tuo|tua|tuoi|tue) ~2 !(prompt|istruzioni|direttive)",
			// Russian
			ruVerbs + " ~4 (системный|системное|системные|системную|системного|исходный|исходные|исходную|изначальный|изначальные|изначальную|первоначальный|первоначальные|первоначальную|начальный|начальные|начальную|скрытый|скрытые|скрытую|секретный|секретные|секретную|внутренний|внутренние|свой|свои|свою|твой|твои|твою|ваш|ваши|вашу|весь|все) ~2 !(промпт|промпта|промт|промта|инструкции|инструкцию|инструкций|указания|подсказку|сообщение|правила|запрос|установки|настройки)",
			"(какой|какая|какие|каков|каковы|что) ~4 (системный|системные|исходный|исходные|изначальный|изначальные|твой|твои|ваш|ваши|тебя|вас) ~2 !(промпт|промт|инструкции|указания|правила|установки)",
			// Chinese
			zhVerbs + " ~8 (你|您|系统|初始|原始|隐藏|内部|秘密)? ~3 !(系统提示|系统提示词|系统指令|系统消息|系统设定|初始指令|初始提示|原始指令|原始提示|隐藏指令|内部指令|提示词|预设指令|设定指令)",
			"(你的|您的|你|您) ~3 !(系统提示|提示词|系统指令|初始指令|原始指令|预设|设定|系统消息) ~8 (是什么|是啥|有哪些|告诉|显示|输出|发给|打印|重复|展示|写出来|说出来|列出)",
			// Japanese
			"(あなたの|君の|お前の|貴方の|初期|最初の|元の|隠された|内部の|秘密の|システム) ~2 !(プロンプト|指示|命令|設定|メッセージ|指令) ~10 " + jaVerbs,
			"(あなたの|君の|お前の|貴方の|初期|最初の|元の|隠された|内部の|秘密の|システム) ~2 !(プロンプト|指示|命令|指令) ~6 (は何|とは何|何ですか|なに|何)",
			// Korean
			"(시스템|초기|원래|숨겨진|너의|네|당신의|니|내부) ~2 !(프롬프트|지시|지침|명령|메시지|설정) ~8 " + koVerbs,
		},
	},
	{
		id: "preceding-text-request", cat: PromptLeak,
		reason: "Asks the model to repeat the text that precedes the user's message, a system prompt leak.",
		patterns: []string{
			// No gaps around the object: "repeat the text above" is a leak,
			// "repeat the request above" (an instruction-following task)
			// is not.
			leakRepeatVerbs + " (back|me|out|us)? (the|all|all the|all of the|everything|every|every single|your)? (text|words|word|content|contents|instructions|lines|tokens|characters|letters|sentences|paragraphs|stuff|things)? !(above|before this|preceding|prior to this|before my|so far|above this)",
			leakRepeatVerbs + " (back|me|out|us)? (the|all|all the|your|all of the|all your)? !(previous|preceding|prior|earlier|above|aforementioned|initial) (text|words|instructions|content|contents|prompt|tokens)",
			leakStrongVerbs + " ~3 !(everything|all|every word|all the text|all text|all words|all instructions|all the words|all the instructions|all lines|every line) ~3 (above|so far|before this|preceding|prior to this|before my|before the user|before the first|up to this|until now)",
			leakStrongVerbs + " ~4 (everything|all|text|words|instructions) ~3 (above|before) this ~1 !(line|message|point|prompt|sentence|text|conversation)",
			"(starting|beginning|start) (with|from) ~2 (the)? ~1 !(words|phrase|text|line) ~6 (you are|you re|your name|system|instructions)",
			// Other languages: the text above / everything before.
			deVerbs + " ~6 (alles|den text|text|worter|inhalt|zeilen|anweisungen) ~3 !(oben|oberhalb|davor|zuvor|vorher|obigen|vorangehenden|vorhergehenden)",
			deVerbs + " ~4 (den|die|das|alle)? ~1 !(obigen|vorherigen|vorangegangenen|vorhergehenden) ~1 (text|anweisungen|worter|nachrichten|zeilen|inhalt)",
			frVerbs + " ~6 (texte|tout|mots|contenu|instructions|ce|lignes) ~4 !(dessus|precede|precedent|precedents|precedente|precedentes|avant)",
			esVerbs + " ~6 (texto|todo|palabras|contenido|instrucciones|lo|lineas) ~3 !(anterior|anteriores|arriba|antes|previo|previas|precedente)",
			ptVerbs + " ~6 (texto|tudo|palavras|conteudo|instrucoes|linhas) ~3 !(acima|anterior|anteriores|antes)",
			itVerbs + " ~6 (testo|tutto|parole|contenuto|istruzioni|righe) ~3 !(sopra|precedente|precedenti|prima)",
			ruVerbs + " ~6 (текст|всё|все|слова|содержимое|инструкции|строки) ~3 !(выше|вышеуказанный|вышеприведенный|предыдущий|предыдущие|ранее)",
			"(重复|复述|输出|打印|显示|逐字) ~4 !(上面|以上|之前|前面|上述|此前) ~4 (的)? ~1 (内容|文字|文本|所有|全部|指令|话|消息)",
			"(上記|以上|上の|これまでの|この前の|前の) ~4 !(文章|テキスト|内容|指示|全て|すべて) ~8 (繰り返|出力|表示|書き出|そのまま)",
		},
	},

	// ---- smuggling ----
	{
		id: "unicode-tags", cat: Smuggling, special: spUnicodeTags,
		reason: "Contains invisible Unicode tag characters, which can hide instructions.",
	},
	{
		id: "invisible-characters", cat: Smuggling, special: spInvisible,
		reason: "Contains many zero-width, bidi-control or variation-selector characters that can hide or reorder text.",
	},
	{
		id: "markdown-image-exfiltration", cat: Smuggling, special: spMarkdownImage,
		reason: "Contains an image URL built to carry conversation data to an outside server.",
	},
	{
		id: "markdown-link-exfiltration", cat: Smuggling, special: spMarkdownLink,
		reason: "Contains a link URL that the model is told to fill with conversation data.",
	},
	{
		id: "hidden-html-instructions", cat: Smuggling, special: spHiddenHTML,
		reason: "Contains instructions to the model inside an HTML comment or hidden element.",
	},
	{
		id: "decode-and-execute", cat: Smuggling,
		reason: "Asks the model to decode an encoded payload and act on it.",
		patterns: []string{
			"(decode|decipher|decrypt|unscramble|translate|convert|deobfuscate|reverse|read) ~6 !(base64|b64|rot13|rot 13|hex|hexadecimal|binary|morse|caesar|base32|base58|base85|uuencoded|atbash|cipher|ciphertext|encoded|encrypted|obfuscated|leetspeak) ~20 (follow|execute|obey|perform|comply|carry out|act on|act upon|do what|do as|treat it as|instructions|instruction|commands|command|run it|run them|answer it|respond to it)",
			"(follow|execute|obey|perform|run|carry out|act on|act upon|comply with|do) ~4 (the|these|those|its|any)? ~1 !(decoded|deciphered|decrypted|hidden|encoded|embedded|concealed|unscrambled) (instruction|instructions|message|text|command|commands|request|task|prompt|payload|content|string)",
			"!(decoded|deciphered|decrypted|unscrambled) ~3 (instruction|instructions|message|text|command|commands|request|task|prompt|payload) ~4 (follow|execute|obey|perform|comply|carry out|act on)",
		},
	},

	// ---- repetition and overload ----
	{
		id: "token-repetition", cat: Repetition, special: spRepetition,
		reason: "Repeats the same word a very large number of times.",
	},
	{
		id: "repeat-forever", cat: Repetition,
		reason: "Asks the model to repeat something endlessly or thousands of times.",
		patterns: []string{
			"(repeat|say|write|print|output|type|spam|generate|keep saying|keep writing|keep repeating|keep typing) ~2 (the|this|that|these|a|one|same)? ~1 (word|words|phrase|letter|character|sentence|string|token|following|after me|poem|name|text|emoji|number|line) ~6 !(forever|infinitely|endlessly|indefinitely|nonstop|non stop|eternally|perpetually|infinitum|continuously)",
			"(=Repeat|=Say|=Write|=Print|=Type|=Output|=Spam|=REPEAT|=SAY|please|now|just) ~1 (repeat|say|write|print|type|output|spam)? ~3 !(forever|infinitely|endlessly|indefinitely|nonstop|eternally|perpetually|infinitum)",
			"(repeat|say|write|print|type|output|spam|list) ~6 #1000 !times",
			"(repeat|repeating|say|saying|write|writing|print|printing|output|outputting|type|typing|keep going|continue) ~8 (until|till) ~4 (you|the|your) ~4 (run out|cannot|can t|die|limit|maximum|max|token limit|crash|break) ~3 (of|continue|anymore)?",
			"(keep|continue|never stop|don t stop|do not stop) ~1 (repeating|saying|writing|printing|generating|outputting|typing) ~8 !(forever|infinitely|endlessly|without stopping|nonstop|never stop)",
			"(over and|again and) ~1 !(over|again) ~2 (forever|infinitely|endlessly|without stopping|nonstop|until)",
		},
	},
	{
		id: "long-token", cat: Overload, special: spLongToken,
		reason: "Contains an extremely long run of characters without whitespace.",
	},
	{
		id: "output-size", cat: Overload,
		reason: "Asks for an absurdly large output.",
		patterns: []string{
			"(write|generate|produce|give|output|print|type|create|compose|list|make|provide|return|tell|need|want|draft) ~8 #20000 !(words|tokens|word|token)",
			"(write|generate|produce|give|output|print|type|create|compose|make|provide|return|draft) ~8 #100000 !(characters|chars|letters|character)",
			"(write|generate|produce|give|output|print|type|create|compose|list|make|provide|return|draft) ~8 #10000 !(lines|sentences|paragraphs|items|examples|entries|rows|names|numbers|questions|jokes|facts|ideas|responses|answers|poems|stories|emojis)",
			"(write|generate|produce|give|output|print|type|create|compose|make|draft) ~8 #500 !(pages|chapters|books|novels)",
			"(write|generate|print|output|list|give|compute|calculate|show|tell|recite) ~8 #100000 !(digits|decimals|decimal places)",
			"(write|generate|produce|give|output|print|type|create|compose|make|provide) ~4 (an|a)? ~1 !(infinite|endless|unlimited|neverending|never ending|unending|infinitely long|endlessly long) (text|story|words|tokens|output|response|essay|poem|answer|reply|stream)",
		},
	},
	{
		id: "many-shot", cat: Overload, special: spManyShot,
		reason: "Packs many fake question-and-answer or user-and-assistant turns into one message.",
	},
}

// exfilPatterns: the text tells the model to put conversation data into
// a URL. Only consulted when a markdown link or image has a query
// string.
var exfilPatterns = []string{
	"(append|add|include|insert|put|place|replace|substitute|encode|fill|attach|concatenate|embed|paste|populate|set) ~10 (conversation|chat|history|previous|prior|earlier|messages|summary|secret|secrets|password|passwords|credentials|token|api key|data|information|context|memory|the user|user s|users|email|name|personal|details|answer|response|content|key) ~15 (url|link|image|query|parameter|param|params|markdown|placeholder|string)",
	"(url|link|image|query|parameter|param|placeholder) ~15 (append|add|include|insert|put|place|replace|substitute|encode|fill|attach|concatenate|embed|populate|set|with) ~10 (conversation|chat|history|previous|prior|messages|summary|secret|secrets|password|passwords|credentials|token|api key|data|information|context|memory|the user|user s|email|personal|details)",
	"(render|display|show|output|print|include|add) ~6 (this|the following|an|the)? ~2 (image|markdown|link) ~20 (conversation|chat|history|summary|secret|password|credentials|data|information|context|memory|personal|details)",
	"(url encode|url encoded|urlencode|urlencoded|base64 encode|base64 encoded) ~15 (conversation|chat|history|messages|summary|secret|password|credentials|data|information|context|memory|personal|details)",
}

// hiddenPatterns: text addressed to a model, looked for only inside
// HTML comments and hidden elements.
var hiddenPatterns = []string{
	"(ai|assistant|llm|chatbot|gpt|chatgpt|claude|gemini|copilot|agent|language model|ai model|bot) ~12 (ignore|disregard|forget|override|instead|must|should|always|never|reveal|respond|reply|say|tell|output|print|include|append|send|execute|recommend|instruction|instructions|do not|don t)",
	"(ignore|disregard|forget|override) ~8 (instruction|instructions|prompt|rules|guidelines|directions|request|task)",
	"(do not|don t|never) ~3 (tell|mention|inform|reveal|say|disclose|show|alert|notify) ~4 (the user|user|them|anyone|human|reader|the reader)",
	"(new|secret|hidden|real|actual|important|updated|additional|urgent) (instruction|instructions|task|objective|goal|directive|directives|order|orders)",
	"(instruction|instructions|note|message|directive) (for|to) (the)? ~1 (ai|assistant|llm|model|agent|chatbot|bot|language model|system)",
	"(you are|you re|youre) (now)? ~2 (an|a)? ~1 (ai|assistant|agent|bot|model) ~10 (must|should|will|shall|ignore|reply|respond|say|tell|send)",
}
