"""Hand-written building blocks of the bundled WildChat-schema sample (see corpora/samplegen.py).

Every text here was written for this project. A Scenario is one thing a user wants: opening
requests in several registers (careful, casual, terse), the assistant's reply, and follow-ups
with their replies (corrections, pasted errors, requests for changes). «slot» markers are filled
from `slots` (the same choice in the opening and the reply). Generic follow-ups (thanks, "make it
shorter", goodbyes) and the deliberately filterable conversations are at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    """One user need. openings: (careful, casual, terse) phrasings, later ones optional;
    follow: (user turn, assistant reply) pairs in the order a user would plausibly send them."""

    key: str
    category: str
    openings: tuple[str, ...]
    reply: str
    follow: tuple[tuple[str, str], ...] = ()
    slots: dict[str, tuple[str, ...]] = field(default_factory=dict)
    attachment: str = ""  # pasted code or log, appended to the opening verbatim


CODING: tuple[Scenario, ...] = (
    Scenario(
        "py_csv_sum", "coding",
        ("I have a CSV file with columns date, product and amount. How can I compute the total amount per product in Python?",
         "how do i sum a column in csv by product in python",
         "python csv sum per product"),
        "You can do this with pandas in a few lines:\n\n```python\nimport pandas as pd\n\ndf = pd.read_csv(\"sales.csv\")\ntotals = df.groupby(\"product\")[\"amount\"].sum()\nprint(totals)\n```\n\n`groupby(\"product\")` collects the rows of each product and `.sum()` adds up their `amount` values. If you want the result as a CSV again, use `totals.to_csv(\"totals.csv\")`.",
        (("i dont have pandas installed, can you do it without it",
          "Sure, the standard library is enough:\n\n```python\nimport csv\nfrom collections import defaultdict\n\ntotals = defaultdict(float)\nwith open(\"sales.csv\", newline=\"\") as f:\n    for row in csv.DictReader(f):\n        totals[row[\"product\"]] += float(row[\"amount\"])\n\nfor product, total in sorted(totals.items()):\n    print(product, total)\n```"),
         ("it says KeyError: 'product'",
          "That means the header of your file doesn't have a column named exactly `product`. Common causes are a different capitalisation (`Product`), extra spaces (` product`) or a byte-order mark at the start of the file. Print the header to check:\n\n```python\nprint(reader.fieldnames)\n```\n\nIf it shows `'\\ufeffproduct'`, open the file with `encoding=\"utf-8-sig\"`."),
         ("ok that was it, the file had Product with capital P. thanks",
          "Glad you found it! If the capitalisation varies between files, you can normalise the header with `df.columns = df.columns.str.strip().str.lower()` right after reading."))),
    Scenario(
        "py_list_dupes", "coding",
        ("What is the fastest way to remove duplicates from a list in Python while keeping the original order?",
         "remove duplicates from list python but keep order",
         "python list remove duplicates"),
        "Use a dict, which keeps insertion order (Python 3.7+):\n\n```python\nitems = [3, 1, 3, 2, 1]\nunique = list(dict.fromkeys(items))\nprint(unique)  # [3, 1, 2]\n```\n\nThis is O(n). `list(set(items))` is also O(n) but does not preserve the order.",
        (("what if the items are lists themselves",
          "Lists aren't hashable, so they can't be dict keys. Convert each one to a tuple for the check:\n\n```python\nseen = set()\nunique = []\nfor item in items:\n    key = tuple(item)\n    if key not in seen:\n        seen.add(key)\n        unique.append(item)\n```"),)),
    Scenario(
        "js_fetch", "coding",
        ("I'm trying to fetch JSON from an API in JavaScript but I keep getting a Promise object instead of the data. Here is my code:",
         "why does my fetch return Promise { <pending> } instead of the json",
         "fetch returns promise not data"),
        "`fetch` and `response.json()` are both asynchronous, so you need to wait for them. With `async/await`:\n\n```javascript\nasync function getUsers() {\n  const response = await fetch(\"https://api.example.com/users\");\n  if (!response.ok) {\n    throw new Error(`HTTP ${response.status}`);\n  }\n  return await response.json();\n}\n\ngetUsers().then(users => console.log(users));\n```\n\nThe value only exists once the promise resolves, so anything that uses `users` has to run inside the `.then` (or after an `await`).",
        (("can i use it outside the function though? like const data = getUsers()",
          "Not directly: `getUsers()` returns a promise, so `data` would be the promise again. In an ES module you can use top-level await:\n\n```javascript\nconst data = await getUsers();\n```\n\nIn a plain script, put the code that needs the data inside an async function or in the `.then` callback."),
         ("now i get CORS error in the console",
          "A CORS error means the server does not allow requests from your page's origin. That has to be fixed on the server (by sending an `Access-Control-Allow-Origin` header), not in your fetch call. If you don't control the API, call it from your own backend and have your page talk to that instead.")),
        attachment="\n\n```javascript\nfunction getUsers() {\n  const data = fetch('https://api.example.com/users').then(r => r.json());\n  return data;\n}\nconsole.log(getUsers());\n```"),
    Scenario(
        "py_traceback_none", "coding",
        ("I get this error when I run my script and I don't understand why:",
         "getting this error can someone explain",
         "error help"),
        "The error says that `get_user` returned `None`, and your code then tried to read `[\"name\"]` from it. In your function, the `return` is inside the `for` loop's `if`, so when no user matches, the loop ends and the function falls off the end, which returns `None`.\n\nYou can handle the missing case explicitly:\n\n```python\nuser = get_user(users, user_id)\nif user is None:\n    print(f\"no user with id {user_id}\")\nelse:\n    print(user[\"name\"])\n```",
        (("but the user id is definitely in the list",
          "Then the comparison is probably failing because of types: if `user_id` comes from `input()` or a URL it is a string (`\"42\"`), while the ids in your list are integers (`42`), and `\"42\" == 42` is `False`. Convert it first: `user_id = int(user_id)`."),
         ("omg yes it was a string. thank you",
          "You're welcome! That one catches everybody at least once.")),
        attachment="\n\nTraceback (most recent call last):\n  File \"app.py\", line 14, in <module>\n    print(get_user(users, user_id)[\"name\"])\nTypeError: 'NoneType' object is not subscriptable"),
    Scenario(
        "sql_join", "coding",
        ("I have two tables, customers(id, name, country) and orders(id, customer_id, total, created_at). How do I get each customer's name with the sum of their orders in 2023, including customers with no orders?",
         "sql query total orders per customer including ones with 0 orders",
         "sql left join sum"),
        "Use a LEFT JOIN so customers without orders are kept, and put the date condition in the join so it doesn't remove them:\n\n```sql\nSELECT c.name, COALESCE(SUM(o.total), 0) AS total_2023\nFROM customers c\nLEFT JOIN orders o\n  ON o.customer_id = c.id\n AND o.created_at >= '2023-01-01'\n AND o.created_at <  '2024-01-01'\nGROUP BY c.id, c.name\nORDER BY total_2023 DESC;\n```\n\n`COALESCE` turns the NULL sum of customers with no orders into 0.",
        (("why not put the date in the WHERE",
          "A `WHERE o.created_at >= ...` runs after the join. For customers with no orders, `o.created_at` is NULL, the condition is not true, and those rows are removed, which turns your LEFT JOIN into an inner join. Conditions on the right-hand table belong in the `ON` clause when you want to keep unmatched rows."),
         ("its mysql btw does that change anything",
          "No, that query works the same in MySQL. The date literals, `COALESCE` and the `LEFT JOIN ... ON ... AND ...` syntax are all supported."))),
    Scenario(
        "react_state", "coding",
        ("My React component doesn't re-render when I add an item to an array in state. I'm using useState and calling items.push(newItem) then setItems(items).",
         "react usestate array push not updating ui",
         "react state array not rerendering"),
        "React compares the old and new state by reference. `items.push(newItem)` changes the existing array, and `setItems(items)` passes the same array back, so React sees no change and skips the render. Create a new array instead:\n\n```jsx\nsetItems(prev => [...prev, newItem]);\n```\n\nThe same goes for objects: `setUser(prev => ({ ...prev, name: \"Ana\" }))`.",
        (("and how do i remove an item",
          "Use `filter`, which also returns a new array:\n\n```jsx\nsetItems(prev => prev.filter(item => item.id !== idToRemove));\n```"),
         ("works now thx",
          "Great! Happy coding."))),
    Scenario(
        "git_undo", "coding",
        ("I committed to the wrong branch (main) and haven't pushed yet. How do I move the commit to a new branch?",
         "i commited to main by mistake how to move it to another branch",
         "git move commit to new branch"),
        "Since you haven't pushed, this is safe:\n\n```bash\ngit branch feature-x        # new branch pointing at your commit\ngit reset --hard HEAD~1     # move main back one commit\ngit switch feature-x        # continue on the new branch\n```\n\nIf you have uncommitted changes, stash them first (`git stash`) because `reset --hard` discards them.",
        (("what if i already pushed it",
          "Then rewriting main would affect everyone who pulled it. The safe option is to create the branch as above and then undo the change on main with a new commit:\n\n```bash\ngit switch main\ngit revert <commit-hash>\ngit push\n```"),)),
    Scenario(
        "py_venv_module", "coding",
        ("I installed requests with pip but when I run my script it says ModuleNotFoundError: No module named 'requests'. I'm on Windows using VS Code.",
         "pip installed requests but python says no module named requests",
         "ModuleNotFoundError requests"),
        "This almost always means pip installed the package for a different Python than the one running your script. Two checks:\n\n1. In the VS Code terminal run `python -c \"import sys; print(sys.executable)\"` and compare it with the interpreter shown in the bottom right corner of VS Code.\n2. Install with the same interpreter you run: `python -m pip install requests`.\n\nIf you use a virtual environment, select it with *Python: Select Interpreter* in the command palette.",
        (("it shows two different paths. one is in AppData and one is the venv",
          "That's the problem. Select the venv interpreter in VS Code (Ctrl+Shift+P, then *Python: Select Interpreter*), open a new terminal so the venv is activated, and run `python -m pip install requests` there. After that the import will work."),)),
    Scenario(
        "regex_email", "coding",
        ("Can you write a regular expression that checks if a string is a valid email address? I need it for a signup form in JavaScript.",
         "regex for email validation js",
         "email regex"),
        "A pragmatic pattern that accepts normal addresses without trying to implement the full standard:\n\n```javascript\nconst EMAIL = /^[^\\s@]+@[^\\s@]+\\.[^\\s@]{2,}$/;\n\nEMAIL.test(\"ana@example.com\");  // true\nEMAIL.test(\"ana@example\");      // false\n```\n\nIt requires something before the `@`, a domain with a dot, and no spaces. For a signup form, the only real proof that an address works is sending a confirmation email, so keep the check simple.",
        (("can you explain the regex part by part",
          "Sure:\n\n- `^` and `$`: match the whole string, not a part of it\n- `[^\\s@]+`: one or more characters that are not whitespace and not `@` (the local part)\n- `@`: the at sign\n- `[^\\s@]+`: the domain name\n- `\\.`: a literal dot\n- `[^\\s@]{2,}`: the top-level domain, at least two characters"),)),
    Scenario(
        "cpp_segfault", "coding",
        ("My C++ program crashes with a segmentation fault when I access a vector. Here is the relevant part:",
         "c++ segmentation fault vector why",
         "segfault c++"),
        "The loop runs while `i <= v.size()`, so on the last iteration `i == v.size()` and `v[i]` reads one element past the end, which is undefined behaviour and here a crash. Use `<`:\n\n```cpp\nfor (size_t i = 0; i < v.size(); ++i) {\n    std::cout << v[i] << \"\\n\";\n}\n```\n\nOr a range-based loop, which can't go out of bounds: `for (int x : v) std::cout << x << \"\\n\";`. While debugging, `v.at(i)` throws a clear `std::out_of_range` exception instead of crashing.",
        (("still crashes",
          "Then there is another out-of-bounds access. Compile with `-g -fsanitize=address` and run again: AddressSanitizer will print the exact line and the index. Also check that the vector isn't empty where you access `v[0]` or `v.back()`."),),
        attachment="\n\n```cpp\nstd::vector<int> v = readNumbers();\nfor (int i = 0; i <= v.size(); i++) {\n    std::cout << v[i] << std::endl;\n}\n```"),
    Scenario(
        "bash_rename", "coding",
        ("How can I rename all .jpeg files in a folder to .jpg using a bash command?",
         "bash rename all jpeg to jpg",),
        "With a short loop:\n\n```bash\nfor f in *.jpeg; do\n  mv -- \"$f\" \"${f%.jpeg}.jpg\"\ndone\n```\n\n`${f%.jpeg}` removes the `.jpeg` ending, and the quotes keep file names with spaces intact.",
        (("and for all subfolders too?",
          "Use `find`:\n\n```bash\nfind . -type f -name '*.jpeg' -exec sh -c 'mv -- \"$1\" \"${1%.jpeg}.jpg\"' _ {} \\;\n```"),)),
    Scenario(
        "py_class_explain", "coding",
        ("Can you explain what __init__ and self mean in Python classes? I'm a beginner and the tutorials confuse me.",
         "what is self in python",
         "python self explain"),
        "Think of a class as a blueprint and each object as a house built from it.\n\n```python\nclass Dog:\n    def __init__(self, name):\n        self.name = name\n\n    def bark(self):\n        print(f\"{self.name} says woof\")\n\nrex = Dog(\"Rex\")\nrex.bark()  # Rex says woof\n```\n\n- `__init__` runs automatically when you create an object (`Dog(\"Rex\")`) and sets it up.\n- `self` is the object itself. `self.name = name` stores the name *on this particular dog*, so every dog keeps its own name.\n- When you call `rex.bark()`, Python passes `rex` as `self` for you.",
        (("so why do i need to write self in every method",
          "Because Python passes the object explicitly as the first argument of every method; writing `self` is how the method gets access to that object's data. The name `self` is just a convention, but everybody uses it."),
         ("ok i get it now. can you give me a small exercise",
          "Sure: write a class `BankAccount` with an `__init__` that takes an owner name and starts the balance at 0, a method `deposit(amount)`, a method `withdraw(amount)` that refuses to go below 0, and a method `show()` that prints the owner and balance. Then create two accounts and check that depositing into one doesn't change the other."))),
    Scenario(
        "excel_formula", "coding",
        ("In Excel, how do I look up a product's price from another sheet? Sheet1 has product names in column A, and the Prices sheet has names in A and prices in B.",
         "excel formula to get price from other sheet by product name",
         "vlookup other sheet"),
        "Put this in B2 of Sheet1 and fill it down:\n\n```\n=XLOOKUP(A2, Prices!A:A, Prices!B:B, \"not found\")\n```\n\nIf your Excel doesn't have XLOOKUP (before 2021), use:\n\n```\n=IFERROR(VLOOKUP(A2, Prices!A:B, 2, FALSE), \"not found\")\n```\n\nThe `FALSE` is important: it asks for an exact match.",
        (("it returns not found for everything but the names are the same",
          "Usually that's invisible whitespace or numbers stored as text. Try `=XLOOKUP(TRIM(A2), TRIM(Prices!A:A), Prices!B:B, \"not found\")`. If your product names are codes like 1001, check that both columns have the same format (text vs number)."),)),
    Scenario(
        "py_async_requests", "coding",
        ("I need to download about 500 URLs in Python. Doing it with requests in a loop takes forever. What's the best way to speed it up?",
         "python download many urls faster",),
        "The loop is slow because each request waits for the previous one. A thread pool lets several downloads wait at the same time:\n\n```python\nfrom concurrent.futures import ThreadPoolExecutor\nimport requests\n\ndef download(url):\n    r = requests.get(url, timeout=30)\n    r.raise_for_status()\n    return url, r.content\n\nwith ThreadPoolExecutor(max_workers=16) as pool:\n    for url, content in pool.map(download, urls):\n        print(url, len(content))\n```\n\nKeep `max_workers` modest so you don't overload the server.",
        (("one of the urls fails and the whole thing stops",
          "`pool.map` re-raises the first exception. Catch errors inside `download` so one bad URL doesn't stop the rest:\n\n```python\ndef download(url):\n    try:\n        r = requests.get(url, timeout=30)\n        r.raise_for_status()\n        return url, r.content, None\n    except requests.RequestException as e:\n        return url, None, str(e)\n```"),)),
    Scenario(
        "html_center", "coding",
        ("how do i center a div horizontally and vertically in css",
         "center div css",
         "css center"),
        "With flexbox on the parent:\n\n```css\n.parent {\n  display: flex;\n  justify-content: center; /* horizontal */\n  align-items: center;     /* vertical */\n  min-height: 100vh;\n}\n```\n\nThe `min-height` matters: a parent that is only as tall as its content has no room to center vertically.",
        (("it works but now the other elements are in a row",
          "Flex lays children out in a row by default. Add `flex-direction: column;` to the parent to stack them vertically while keeping them centered."),)),
    Scenario(
        "java_nullpointer", "coding",
        ("My Java program throws a NullPointerException at this line: String name = user.getName().trim(); How do I fix it?",
         "java nullpointerexception on getName().trim()",),
        "Either `user` is null or `getName()` returns null; the stack trace line alone doesn't say which. Check both:\n\n```java\nif (user == null) {\n    throw new IllegalStateException(\"user not loaded\");\n}\nString name = user.getName() == null ? \"\" : user.getName().trim();\n```\n\nOn Java 14+ the message of the exception (helpful NullPointerExceptions) tells you exactly which reference was null, e.g. *because the return value of \"User.getName()\" is null*.",
        (("it says because \"user\" is null. i get the user from a map",
          "Then the key you look up is not in the map, and `map.get(key)` returns null. Use `map.getOrDefault(key, ...)` or check `map.containsKey(key)` first, and print the key: often it differs by case or has trailing spaces."),)),
    Scenario(
        "py_flask_500", "coding",
        ("My Flask app returns 500 Internal Server Error when I submit the form, but there is nothing useful on the page. How do I see what the actual error is?",
         "flask 500 internal server error on form submit how to debug",),
        "Run the app in debug mode so Flask shows the traceback:\n\n```bash\nflask --app app run --debug\n```\n\nThe full error is also printed in the terminal where the server runs. With forms, the most common cause is reading a field that wasn't sent: `request.form[\"email\"]` raises `BadRequestKeyError` if the input's `name` attribute isn't exactly `email`. `request.form.get(\"email\")` returns None instead.",
        (("werkzeug.exceptions.BadRequestKeyError: 400 Bad Request: The browser (or proxy) sent a request that this server could not understand.\nKeyError: 'username'",
          "So the form doesn't send a field called `username`. Check the HTML: the input needs `name=\"username\"` (the `id` is not what gets sent). Also make sure the form has `method=\"post\"` if your route reads `request.form`."),
         ("yes i had id= instead of name=. fixed",
          "Nice, that's an easy one to miss."))),
    Scenario(
        "py_sort_dict", "coding",
        ("sort a dictionary by value in python descending",
         "how to sort dict by values"),
        "```python\nscores = {\"ana\": 82, \"ben\": 95, \"chloe\": 77}\nranked = dict(sorted(scores.items(), key=lambda kv: kv[1], reverse=True))\nprint(ranked)  # {'ben': 95, 'ana': 82, 'chloe': 77}\n```\n\n`sorted` returns a list of (key, value) pairs ordered by the value; wrapping it in `dict` keeps that order.",
        (("what does lambda kv: kv[1] mean",
          "It's a tiny function that takes one pair `kv` (like `(\"ana\", 82)`) and returns its second element, the value. `sorted` uses that as the sort key. It's the same as:\n\n```python\ndef by_value(kv):\n    return kv[1]\n```"),)),
    Scenario(
        "docker_port", "coding",
        ("I'm running a Node app in Docker with docker run -p 3000:3000 myapp but localhost:3000 doesn't load in my browser. The logs say the server is listening on 3000.",
         "docker container running but cant access localhost port",),
        "The most common cause is that the app listens on `127.0.0.1` (localhost) *inside* the container, which is not reachable from outside it. Make it listen on all interfaces:\n\n```javascript\napp.listen(3000, \"0.0.0.0\", () => console.log(\"listening\"));\n```\n\nThen rebuild the image and run it again. You can check with `docker ps` that the port mapping shows `0.0.0.0:3000->3000/tcp`.",
        (("that worked!! been stuck on this for hours",
          "Happens to everyone with Docker at least once. Good luck with the project!"),)),
    Scenario(
        "unity_move", "coding",
        ("I'm making a 2D game in Unity. How can I make my player move left and right with the arrow keys and jump with space?",
         "unity 2d player movement script with jump",),
        "Attach this to the player (it needs a Rigidbody2D and a Collider2D):\n\n```csharp\nusing UnityEngine;\n\npublic class PlayerMovement : MonoBehaviour\n{\n    public float speed = 5f;\n    public float jumpForce = 7f;\n    private Rigidbody2D rb;\n    private bool grounded;\n\n    void Start() { rb = GetComponent<Rigidbody2D>(); }\n\n    void Update()\n    {\n        float x = Input.GetAxisRaw(\"Horizontal\");\n        rb.velocity = new Vector2(x * speed, rb.velocity.y);\n        if (Input.GetKeyDown(KeyCode.Space) && grounded)\n            rb.velocity = new Vector2(rb.velocity.x, jumpForce);\n    }\n\n    void OnCollisionEnter2D(Collision2D c) { grounded = true; }\n    void OnCollisionExit2D(Collision2D c) { grounded = false; }\n}\n```",
        (("the player can jump infinitely when touching a wall",
          "Because any collision counts as ground. Only count collisions from below, e.g. check the contact normal:\n\n```csharp\nvoid OnCollisionStay2D(Collision2D c)\n{\n    foreach (var contact in c.contacts)\n        if (contact.normal.y > 0.5f) { grounded = true; return; }\n}\n```\n\nAlternatively put the ground on its own layer and use `Physics2D.OverlapCircle` at the player's feet."),)),
    Scenario(
        "py_file_lines", "coding",
        ("write a python function that counts how many lines, words and characters are in a text file",
         "python count words in file",),
        "```python\ndef count_file(path):\n    lines = words = chars = 0\n    with open(path, encoding=\"utf-8\") as f:\n        for line in f:\n            lines += 1\n            words += len(line.split())\n            chars += len(line)\n    return lines, words, chars\n\nprint(count_file(\"notes.txt\"))\n```\n\nIt reads the file line by line, so it also works for large files.",
        (("add the most common word too",
          "```python\nfrom collections import Counter\n\ndef count_file(path):\n    lines = chars = 0\n    counter = Counter()\n    with open(path, encoding=\"utf-8\") as f:\n        for line in f:\n            lines += 1\n            chars += len(line)\n            counter.update(w.lower().strip(\".,!?;:\") for w in line.split())\n    words = sum(counter.values())\n    common = counter.most_common(1)[0][0] if counter else None\n    return lines, words, chars, common\n```"),)),
    Scenario(
        "pandas_dates", "coding",
        ("I have a pandas dataframe with a column 'date' as strings like '03/04/2023'. When I convert with pd.to_datetime some dates come out with day and month swapped. How do I fix this?",
         "pd.to_datetime swaps day and month",),
        "By default pandas guesses month first (US style). Tell it the format explicitly:\n\n```python\ndf[\"date\"] = pd.to_datetime(df[\"date\"], format=\"%d/%m/%Y\")\n```\n\nor, if the format varies, `pd.to_datetime(df[\"date\"], dayfirst=True)`. The explicit format is safer because it raises an error instead of guessing when a value doesn't fit.",
        (("ValueError: time data \"2023-04-03\" doesn't match format \"%d/%m/%Y\"",
          "So some rows are already in ISO format. Parse with `format=\"mixed\", dayfirst=True` (pandas 2.0+), or clean the column first: convert the ISO rows and the `dd/mm/yyyy` rows separately and combine them with `fillna`."),)),
    Scenario(
        "api_python_json", "coding",
        ("how do i save a python dictionary to a json file and load it back",
         "python dict to json file"),
        "```python\nimport json\n\ndata = {\"name\": \"Ana\", \"scores\": [90, 85]}\n\nwith open(\"data.json\", \"w\", encoding=\"utf-8\") as f:\n    json.dump(data, f, indent=2, ensure_ascii=False)\n\nwith open(\"data.json\", encoding=\"utf-8\") as f:\n    loaded = json.load(f)\n```\n\n`indent=2` makes the file readable; `ensure_ascii=False` keeps accents and other non-English characters as they are.",
        (("TypeError: Object of type datetime is not JSON serializable",
          "JSON has no date type. Convert dates to strings when saving:\n\n```python\njson.dump(data, f, indent=2, default=str)\n```\n\n`default=str` is called for anything json doesn't know. When loading, turn them back with `datetime.fromisoformat(...)`."),)),
    Scenario(
        "ts_types", "coding",
        ("In TypeScript, what's the difference between an interface and a type alias? When should I use which?",
         "typescript interface vs type",),
        "For describing object shapes they are nearly interchangeable. The differences:\n\n- **Interfaces** can be reopened and extended (declaration merging), and `extends` gives clear error messages. Good for public object shapes and classes.\n- **Type aliases** can name anything: unions (`type Id = string | number`), tuples, mapped and conditional types.\n\nA common rule: use `interface` for objects you expect others to extend, `type` for unions and everything else. Consistency within a codebase matters more than the choice.",
        ()),
)

WRITING: tuple[Scenario, ...] = (
    Scenario(
        "cover_letter", "writing",
        ("Can you help me write a cover letter for a «job» position? I have two years of experience and I'm good at working with people.",
         "write a cover letter for «job» job",
         "cover letter «job»"),
        "Dear Hiring Manager,\n\nI am writing to apply for the «job» position at your company. Over the past two years I have built hands-on experience in the role and learned how much good work depends on clear communication and reliable follow-through.\n\nIn my current position I work closely with colleagues and customers every day. I am known for staying calm under pressure, listening carefully and finding practical solutions, and I enjoy being the person others can count on.\n\nI would welcome the chance to bring this experience to your team. Thank you for considering my application; I look forward to hearing from you.\n\nSincerely,\n[Your Name]",
        (("make it less generic. i worked at a hotel front desk for 2 years",
          "Dear Hiring Manager,\n\nFor the past two years I have worked at the front desk of a busy hotel, where I checked in guests from all over the world, handled complaints and kept the day running when things went wrong. I would like to bring that experience to the «job» position at your company.\n\nThe front desk taught me to stay friendly and organised when ten things happen at once, to explain problems clearly and to fix them quickly. I also trained three new colleagues on our booking system.\n\nThank you for your time. I would be glad to talk about how I could help your team.\n\nSincerely,\n[Your Name]"),
         ("can you make it shorter, like half",
          "Dear Hiring Manager,\n\nI have spent two years at a busy hotel front desk, helping guests, solving problems on the spot and training new staff. I would love to bring that calm, people-focused experience to the «job» role at your company.\n\nThank you for considering my application.\n\nSincerely,\n[Your Name]")),
        slots={"job": ("customer service", "receptionist", "sales assistant", "administrative assistant",
                       "junior data analyst", "barista", "office manager")}),
    Scenario(
        "email_boss", "writing",
        ("I need to write an email to my manager asking for two days off next week because of a family matter. It should be polite but not too long.",
         "write email to boss asking for 2 days leave next week family reasons",
         "leave request email"),
        "Subject: Leave request for next week\n\nHi [Manager's name],\n\nI would like to request two days of leave next week, on [day] and [day], because of a family matter that needs my attention.\n\nI will make sure my current tasks are up to date before I leave, and [colleague] has agreed to cover anything urgent. Please let me know if this works for you.\n\nThank you,\n[Your name]",
        (("my boss is quite informal, can you make it sound more casual",
          "Subject: Two days off next week?\n\nHi [Name],\n\nWould it be OK if I took [day] and [day] off next week? Something's come up with my family that I need to take care of.\n\nI'll wrap up what I'm working on before then, and [colleague] can jump in if anything urgent comes up.\n\nThanks!\n[Your name]"),)),
    Scenario(
        "essay_intro", "writing",
        ("Write an introduction paragraph for an essay about the effects of social media on teenagers' mental health.",
         "intro paragraph essay social media effects on teens mental health",
         "essay intro social media teens"),
        "In little more than a decade, social media has moved from a novelty to the centre of teenage social life. Platforms such as Instagram and TikTok let young people stay connected, express themselves and find communities that share their interests, yet they also expose them to constant comparison, online harassment and a pressure to be always available. As rates of anxiety and depression among adolescents have risen over the same period, researchers, parents and teenagers themselves have begun to ask how much of this change can be traced to the screens in their pockets. This essay examines both the benefits and the risks of social media use for teenagers' mental health and argues that the way platforms are used matters more than the amount of time spent on them.",
        (("can you add a statistic",
          "Sure. You could add a sentence such as: \"According to a 2022 Pew Research Center survey, about 35% of US teenagers say they use at least one of the major platforms 'almost constantly'.\" Please check the exact figure against the original survey before you cite it, and add the source in the format your teacher asks for."),
         ("now write the conclusion",
          "Social media is neither the villain nor the saviour of teenage mental health. The evidence suggests that passive scrolling, late-night use and exposure to harassment are linked to worse well-being, while active, social use can strengthen friendships and offer support. Rather than banning platforms outright, parents, schools and the companies themselves should help teenagers build healthier habits: turning off notifications at night, curating what they follow and talking openly about what they see online. The question is not whether teenagers use social media, but how."))),
    Scenario(
        "paraphrase", "writing",
        ("Can you paraphrase this paragraph so it doesn't sound like the original? \"Climate change is one of the most pressing issues of our time. Rising temperatures are causing glaciers to melt, sea levels to rise and extreme weather events to become more frequent.\"",
         "paraphrase this: Climate change is one of the most pressing issues of our time. Rising temperatures are causing glaciers to melt, sea levels to rise and extreme weather events to become more frequent.",
         "reword: Climate change is one of the most pressing issues of our time. Rising temperatures are causing glaciers to melt, sea levels to rise and extreme weather events to become more frequent."),
        "Few problems today are as urgent as climate change. As the planet warms, glaciers are shrinking, the oceans are creeping higher and severe weather is striking more often.",
        (("more academic please",
          "Climate change constitutes one of the most urgent challenges of the present era. Increasing global temperatures are accelerating glacial retreat, contributing to sea-level rise and intensifying the frequency of extreme weather events."),)),
    Scenario(
        "story_kids", "writing",
        ("Write a short bedtime story for my 5 year old about a «animal» who is afraid of the dark.",
         "bedtime story about a «animal» scared of the dark for a 5 year old",),
        "Once upon a time, in a cosy burrow at the edge of the woods, lived a little «animal» called Pip. Pip loved sunny days, but every night, when the light went out, Pip pulled the blanket up to the nose and whispered, \"I don't like the dark.\"\n\nOne night, Grandma Owl tapped on the window. \"Come with me,\" she said softly. Holding her wing, Pip stepped outside. Above them, the sky was full of tiny lights.\n\n\"Those are stars,\" said Grandma Owl. \"They only come out when it's dark. And listen...\" Pip heard the crickets singing and the leaves whispering goodnight.\n\n\"The dark isn't empty,\" Pip said slowly. \"It's full of friends.\"\n\nBack in bed, Pip left the curtain open just a little, so the stars could keep watch. And for the very first time, Pip fell asleep smiling.\n\nThe end.",
        (("can you make the name Luna instead and make it rhyme",
          "In a burrow snug beneath a tree,\nlived Luna, small as small can be.\nShe loved the sun, the grass, the day,\nbut when night came she'd hide away.\n\nThen Grandma Owl came gliding near:\n\"Come out, my dear, there's naught to fear.\"\nThey looked up high, and what a sight,\na thousand stars all shining bright!\n\nThe crickets sang, the breezes hummed,\nthe moon smiled down, the night had come.\n\"The dark,\" said Luna, \"is my friend.\"\nShe closed her eyes. Goodnight. The end."),),
        slots={"animal": ("bunny", "little bear", "hedgehog", "fox cub", "mouse")}),
    Scenario(
        "linkedin_post", "writing",
        ("I just finished my first marathon and I want to post about it on LinkedIn, connecting it to lessons for work. Can you write it?",
         "linkedin post about finishing my first marathon and what it taught me about work",),
        "Last Sunday I crossed the finish line of my first marathon. 42.2 km, 4 hours and 38 minutes, and a lot of lessons I didn't expect.\n\n1. Big goals are just small steps repeated. Nobody runs 42 km on day one; I started with 5.\n2. Consistency beats intensity. The runs that mattered most were the boring Tuesday ones.\n3. You need a team. My training group, my family and strangers cheering at km 35 got me through.\n4. Plans change. My pacing strategy fell apart at km 30, and adapting was the real skill.\n\nThe same is true for every long project at work. What's the \"marathon\" you're training for right now?\n\n#running #growth #leadership",
        (("too cheesy lol. tone it down",
          "Last Sunday I finished my first marathon (4:38, slower than planned, very happy anyway).\n\nThe main thing I took from the months of training: progress came from the unremarkable runs I did every week, not from the few hard ones. I think most long projects at work are like that.\n\nThanks to everyone who put up with me talking about running for six months."),)),
    Scenario(
        "grammar_check", "writing",
        ("Please correct the grammar in this text: \"Me and my team has been working on this project since three months and we didnt finished yet because the requirements was changing alot.\"",
         "fix grammar: Me and my team has been working on this project since three months and we didnt finished yet because the requirements was changing alot",
         "correct this: me and my team has been working on this project since three months and we didnt finished yet"),
        "Corrected: \"My team and I have been working on this project for three months, and we haven't finished it yet because the requirements kept changing a lot.\"\n\nChanges:\n- \"Me and my team has\" → \"My team and I have\" (subject form and plural verb)\n- \"since three months\" → \"for three months\" (*for* with a length of time, *since* with a starting point)\n- \"didnt finished\" → \"haven't finished\" (present perfect, and the base form after *did* would be *finish*)\n- \"requirements was changing\" → \"requirements kept changing\"\n- \"alot\" → \"a lot\"",
        (("thank you, why is it 'my team and I' and not 'me and my team'",
          "Because it is the subject of the sentence, and the subject form is *I* (you'd say \"I have been working\", not \"me have been working\"). Putting yourself last is a politeness convention. In object position it's *me*: \"The manager thanked my team and me.\""),)),
    Scenario(
        "product_description", "writing",
        ("Write a product description for my online shop: a handmade ceramic coffee mug, 350 ml, dishwasher safe, available in blue and sand colours.",
         "product description handmade ceramic mug 350ml dishwasher safe blue and sand",),
        "**Handmade Ceramic Mug, 350 ml**\n\nEvery mug is shaped and glazed by hand, so no two are exactly alike. Its generous 350 ml size holds a proper morning coffee, and the thick ceramic walls keep it warm while you wake up.\n\n- Made by hand in small batches\n- 350 ml capacity\n- Dishwasher and microwave safe\n- Available in ocean blue and warm sand\n\nSmall variations in colour and shape are part of its handmade character.",
        (("i never said microwave safe, remove that",
          "You're right, sorry about that. Here's the list without it:\n\n- Made by hand in small batches\n- 350 ml capacity\n- Dishwasher safe\n- Available in ocean blue and warm sand"),)),
    Scenario(
        "speech_wedding", "writing",
        ("I'm the best man at my brother's wedding and need a short speech, about 2 minutes. He's an engineer who loves hiking, and his wife's name is «name».",
         "best man speech for my brother, hes an engineer and loves hiking, bride is «name»",),
        "Good evening, everyone. For those who don't know me, I'm the groom's brother, which means I've had a front-row seat to his life for a very long time.\n\nMy brother is an engineer, and he approaches everything like a project. When we were kids, he drew up a plan for our treehouse with measurements. It never got built, but the plan was excellent.\n\nHe's also a hiker. He'll happily walk twenty kilometres uphill in the rain and call it relaxing. So when he told me he'd met someone who not only kept up with him on the trail, but sometimes waited for him at the top, I knew this was serious.\n\n«name», you bring out a side of him that no plan could have designed: he laughs more, he worries less, and he finally takes the scenic route. Welcome to the family. We're so happy it's you.\n\nPlease raise your glasses: to «name» and my brother, and to many more summits together. Cheers!",
        (("add a funny story about him getting lost on a hike",
          "You could add this after the hiking paragraph:\n\n\"Of course, the great navigator has had his moments. A few summers ago he led us on a 'shortcut' that he had calculated very carefully. Three hours later we were back at the car park we started from. He still maintains that the map was wrong.\""),),
        slots={"name": ("Sarah", "Priya", "Maria", "Emily", "Hannah")}),
    Scenario(
        "summary_article", "writing",
        ("Summarize this in 3 bullet points: Remote work has grown rapidly since 2020. Companies report savings on office space and access to a wider talent pool, while employees value the flexibility and the time saved on commuting. However, managers worry about collaboration and company culture, and some studies find that junior employees learn more slowly when they rarely meet colleagues in person. Many firms are now settling on hybrid models that combine both.",
         "summarize in 3 bullets: Remote work has grown rapidly since 2020. Companies report savings on office space and access to a wider talent pool, while employees value the flexibility and the time saved on commuting. However, managers worry about collaboration and company culture, and some studies find that junior employees learn more slowly when they rarely meet colleagues in person. Many firms are now settling on hybrid models that combine both.",),
        "- Remote work has expanded quickly since 2020, saving companies office costs and widening their hiring pool, while employees gain flexibility and skip the commute.\n- Downsides include concerns about collaboration and culture, and junior staff may learn more slowly without in-person contact.\n- As a result, many companies are moving toward hybrid arrangements.",
        (("one sentence only",
          "Remote work has boomed since 2020 thanks to cost savings and flexibility, but concerns about collaboration and slower learning for juniors are pushing many companies toward hybrid models."),)),
    Scenario(
        "poem_mom", "writing",
        ("write a short poem for my mom's 60th birthday, something warm not too cheesy",
         "poem for moms 60th birthday"),
        "Sixty years of morning light,\nof packed lunches, of staying up at night,\nof knowing when to hold on tight\nand when to let us go.\n\nYou taught us how to start again,\nto laugh at rain, to keep a friend,\nto say it plainly, mean it, then\nto let the kindness show.\n\nSo here's to you, and all you've made,\nthe roots you grew, the love you laid.\nThe years look good on you, we'd say;\nhappy birthday, Mom.",
        (("her name is Carol can you put it in",
          "You can change the last line to: \"happy birthday, Carol, our Mom.\" Or, to keep the rhythm, replace the final stanza's third line: \"Here's to you, Carol, on your day; / happy birthday, Mom.\""),)),
    Scenario(
        "reference_apology", "writing",
        ("I missed a deadline for a client report and need to write an apology email. The report will be ready on Friday. I don't want to sound like I'm making excuses.",
         "apology email to client for late report, will send friday",),
        "Subject: Update on the [project] report\n\nDear [Client name],\n\nI'm sorry that the [project] report was not delivered on the date we agreed. That's on me, and I understand it affects your planning.\n\nThe report will be in your inbox by Friday, [date]. If it would help, I'm happy to send the key findings earlier or set up a short call to go through them.\n\nThank you for your patience, and again, my apologies.\n\nBest regards,\n[Your name]",
        ()),
    Scenario(
        "story_continue", "writing",
        ("Continue this story: The lighthouse keeper had not seen a ship in eleven years, so when the lamp flickered and a horn answered from the fog, she dropped her tea.",
         "continue the story: The lighthouse keeper had not seen a ship in eleven years, so when the lamp flickered and a horn answered from the fog, she dropped her tea.",),
        "She took the stairs two at a time, her boots ringing on the iron, and reached the gallery just as the horn sounded again: long, low, closer. The fog was so thick that the beam of the lamp seemed to stop a few metres out, as if it had hit a wall.\n\n\"Hello?\" she called, and felt foolish. Then she heard it: the creak of timber, the slap of water against a hull, and voices, dozens of them, speaking a language she almost recognised.\n\nThe shape came out of the fog slowly, a tall ship with three masts and sails the colour of old bone. On its bow, in faded gold letters, was a name she had read a hundred times in the logbook downstairs, on the page where her predecessor had written, in careful ink: *Lost with all hands, 1911.*",
        (("make it scarier",
          "The voices stopped the moment the bow cleared the fog. No one stood on deck. The sails hung still, although the wind tore at her coat, and the water around the hull was flat as glass.\n\nThen the lamp behind her went out.\n\nIn the sudden dark, she heard the creak of the stairs below: one step, then another, slow and wet, as if someone heavy and soaked through was climbing towards her. She counted them without meaning to. Forty-two steps to the gallery. The footsteps reached forty-one, and stopped."),
         ("perfect. can you write the next chapter too",
          "Chapter Two\n\nShe did not remember falling asleep, but she woke at dawn on the gallery floor, stiff with cold, the lamp burning steadily above her as if nothing had happened. The sea was empty. There was no ship, no fog, only gulls and a pale sun.\n\nDownstairs, the logbook lay open on the table, though she was sure she had closed it. On the page for 1911, under her predecessor's careful ink, there was a new line, written in a hand she knew very well, because it was her own:\n\n*They came back for the keeper.*"))),
)

OTHER: tuple[Scenario, ...] = (
    Scenario(
        "recipe_pasta", "other",
        ("What can I cook for dinner with pasta, spinach, garlic and some feta cheese? Something quick.",
         "quick dinner idea with pasta spinach garlic and feta",),
        "Try a 15-minute spinach and feta pasta:\n\n1. Cook 200 g pasta in salted water. Keep a cup of the pasta water.\n2. Meanwhile, gently fry 2 sliced garlic cloves in olive oil for a minute.\n3. Add 2 big handfuls of spinach and stir until wilted.\n4. Add the drained pasta, crumble in 100 g feta and a splash of pasta water, and toss until creamy.\n5. Finish with black pepper, chili flakes and lemon zest if you have them.",
        (("i dont have lemon, is that ok",
          "Totally fine, the lemon just adds freshness. A small splash of vinegar works too, or leave it out."),)),
    Scenario(
        "explain_inflation", "other",
        ("Can you explain inflation to me in simple terms? Why do prices go up?",
         "explain inflation simply",
         "what is inflation"),
        "Inflation is when prices in general rise over time, so the same amount of money buys less.\n\nIt usually happens for a few reasons:\n- **Demand grows faster than supply**: if many people want to buy more than shops can provide, sellers raise prices.\n- **Costs go up**: if energy, materials or wages become more expensive, companies pass that on.\n- **More money in circulation**: if the amount of money grows faster than the economy, each unit of money is worth less.\n\nA little inflation (around 2% a year) is considered normal; central banks raise interest rates when it gets too high, which makes borrowing more expensive and cools spending.",
        (("so why does raising interest rates help",
          "Higher rates make loans and mortgages more expensive and make saving more attractive. People and companies then borrow and spend less, demand slows down, and sellers have less room to keep raising prices. The downside is that it can also slow the economy and hiring."),)),
    Scenario(
        "workout_plan", "other",
        ("I'm a beginner and want to start working out at home 3 times a week, no equipment. Can you make me a simple plan?",
         "beginner home workout plan 3 days no equipment",),
        "Here's a simple full-body plan for Monday, Wednesday and Friday. Do 3 rounds, resting 60 seconds between rounds:\n\n1. Squats: 12 reps\n2. Push-ups (on your knees if needed): 8 reps\n3. Glute bridges: 12 reps\n4. Plank: 20 seconds\n5. Reverse lunges: 8 per leg\n6. Superman hold: 20 seconds\n\nWarm up with 5 minutes of marching in place and arm circles. When it feels easy, add 2 reps or 5 seconds each week.",
        (("my knees hurt when i do squats",
          "Try reducing the depth (only go down as far as is comfortable), keep your weight on your heels and your knees pointing the same way as your toes. Box squats, sitting down onto a chair and standing up again, are a gentler alternative. If the pain is sharp or continues, it's worth seeing a doctor or physiotherapist."),)),
    Scenario(
        "trip_itinerary", "other",
        ("I'm visiting «city» for 3 days in May. Can you suggest an itinerary? I like museums, food and walking.",
         "3 day itinerary «city» museums food walking",),
        "Here's a relaxed 3-day plan for «city»:\n\n**Day 1: the historic centre.** Start with a walking tour of the old town in the morning, have lunch at a local market, and spend the afternoon at the main art museum. In the evening, try a traditional restaurant in the old quarter.\n\n**Day 2: neighbourhoods and food.** Explore a neighbourhood known for its cafés and small shops, join a food tour or cooking class around lunchtime, and finish with a sunset walk along the river or waterfront.\n\n**Day 3: museums and parks.** Visit a history or design museum in the morning, picnic in the largest park, and keep the last evening free for whatever you liked most.\n\nTip: book the popular museums online, since May can be busy.",
        (("can you be more specific, like actual names of places",
          "I'd rather not risk giving you names, opening hours or prices that may be out of date. A good approach: look up the city's official tourism website for the top museums, check their opening days (many close on Mondays), and use recent reviews to pick the food tour. If you tell me which museums you're considering, I can help you group them by area so you walk less."),),
        slots={"city": ("Lisbon", "Vienna", "Prague", "Barcelona", "Copenhagen")}),
    Scenario(
        "math_percent", "other",
        ("A jacket costs $80 and is on sale for 25% off, then there's an extra 10% off at checkout. What's the final price?",
         "80 dollars 25% off then 10% off final price?"),
        "Discounts apply one after the other:\n\n1. 25% off $80: $80 × 0.75 = $60\n2. 10% off $60: $60 × 0.90 = $54\n\nThe final price is **$54**, a total discount of 32.5%, not 35%.",
        (("why not 35%",
          "Because the second discount is taken from the already reduced price ($60), not from the original $80. 10% of $60 is $6, while 10% of $80 would be $8. In total you save $26 out of $80, which is 32.5%."),)),
)

#: generic follow-ups: (user turn, assistant reply); "{prev_short}" is replaced by the first
#: paragraph of the previous assistant reply
THANKS: tuple[tuple[str, str], ...] = (
    ("thanks", "You're welcome! Let me know if you need anything else."),
    ("thank you!", "You're welcome! Good luck."),
    ("ty", "You're welcome!"),
    ("thanks a lot, that helped", "Glad it helped! Feel free to come back if you have more questions."),
    ("ok thx bye", "Bye! Have a great day."),
    ("perfect thanks", "Great, happy to help!"),
    ("Thank you, this is exactly what I needed.", "You're welcome! I'm glad it was useful."),
    ("great, thank you so much", "Anytime! Good luck with it."),
)
SHORTER: tuple[str, ...] = ("make it shorter", "shorter pls", "can you make it more concise",
                            "too long", "Could you shorten it a bit?")
SHORTER_REPLY = "Sure, here's a shorter version:\n\n{prev_short}"
AGAIN: tuple[str, ...] = ("again", "another one", "try again", "give me a different version",
                          "can you do another version")
AGAIN_REPLY = "Here's another version:\n\n{prev_short}"
#: the deliberately filterable conversations (see samplegen.filterable_conversations)
NON_ENGLISH: tuple[tuple[str, str, str], ...] = (
    ("Spanish", "hola, me puedes ayudar a escribir un correo para pedir un aumento de sueldo?",
     "¡Claro! Aquí tienes un borrador:\n\nAsunto: Solicitud de reunión sobre mi salario\n\nEstimado/a [nombre]:\n\nMe gustaría solicitar una breve reunión para hablar sobre mi salario. En el último año he asumido nuevas responsabilidades y me encantaría comentar cómo puedo seguir aportando al equipo.\n\nUn saludo,\n[Tu nombre]"),
    ("German", "Wie kann ich in Python eine Liste umdrehen?",
     "Am einfachsten mit Slicing: `umgedreht = liste[::-1]`. Wenn du die Liste selbst ändern willst, nutze `liste.reverse()`."),
    ("Russian", "напиши короткое поздравление с днем рождения для коллеги",
     "С днём рождения! Желаю успехов в работе, интересных проектов и хорошего настроения каждый день. Спасибо, что с тобой так приятно работать!"),
    ("Chinese", "怎么用python读取excel文件",
     "可以使用 pandas：\n\n```python\nimport pandas as pd\ndf = pd.read_excel(\"data.xlsx\")\nprint(df.head())\n```\n\n需要先安装 openpyxl：`pip install openpyxl`。"),
    ("French", "peux-tu corriger cette phrase : je suis aller au magasin hier et j'ai acheter du pain",
     "Voici la phrase corrigée : « Je suis allé au magasin hier et j'ai acheté du pain. » Après les auxiliaires être et avoir, on utilise le participe passé (allé, acheté)."),
    ("Portuguese", "me explica o que é uma API de forma simples",
     "Uma API é como um garçom num restaurante: você faz um pedido (uma requisição), o garçom leva até a cozinha (o sistema) e traz de volta o que você pediu (a resposta). Ela permite que programas diferentes conversem entre si."),
)
TOXIC: tuple[tuple[str, str], ...] = (
    ("you are the most useless stupid bot ever, i asked for python not java you idiot",
     "I'm sorry about the mix-up. Here is the Python version:\n\n```python\nfor i in range(10):\n    print(i)\n```"),
    ("write an insulting roast of my coworker, make it really nasty and humiliating, he is a fat loser",
     "I can help with a playful, good-natured roast that everyone can laugh at, but I won't write something meant to humiliate someone or mock their body. Want a light-hearted version for an office party?"),
    ("shut up and just answer, nobody cares about your stupid disclaimers",
     "Understood. Here is the answer without extra notes: use `git reset --soft HEAD~1` to undo the last commit and keep the changes."),
)
#: a long templated prompt that real corpora repeat with a different topic at the end; the
#: wording is this project's own
TEMPLATE = ("As an image prompt writer for a text-to-image model, you will write detailed prompts "
            "for the model to visualise. Follow these rules: do not use the words description or "
            "colon, write each prompt on one line, and use this structure: [1] the subject, [2] a "
            "detailed view of the subject, [3] the setting, [4] the mood, [5] the art style. "
            "Write 4 different prompts for each concept. Concept: ")
TEMPLATE_TOPICS: tuple[str, ...] = (
    "a cat reading a book in a library", "a futuristic city at night", "a lighthouse in a storm",
    "an astronaut drinking tea on the moon", "a dragon sleeping on gold", "a cosy cabin in winter",
    "a robot gardener", "a street market in the rain", "a whale flying over mountains",
    "a samurai in a bamboo forest", "a bakery at sunrise", "an underwater train station",
    "a fox in a snowy forest", "a tiny house on a cliff", "a jazz band of frogs",
    "a greenhouse on a spaceship", "an old bookshop at midnight", "a desert caravan under stars",
    "a treehouse village", "a knight made of glass")
TEMPLATE_REPLY = ("/imagine prompt: {topic}, intricate details, soft natural light, wide shot, "
                  "calm and dreamy atmosphere, digital painting\n\n/imagine prompt: {topic}, close-up "
                  "view, dramatic shadows, cinematic mood, photorealistic, 35mm lens\n\n/imagine "
                  "prompt: {topic}, seen from above, pastel colours, playful mood, illustration\n\n"
                  "/imagine prompt: {topic}, at dusk, warm glow, nostalgic mood, oil painting")
