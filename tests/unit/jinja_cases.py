# jinja_cases.py — regenerates jinja_cases.inc (the table of tests/unit/test_jinja.c):
# each case rendered by Python Jinja2 configured as transformers' apply_chat_template.
# Run: python3 tests/unit/jinja_cases.py > tests/unit/jinja_cases.inc
# The {% generation %} case is fixed up below: plain Jinja2 lacks that extension (transformers adds it).
import json, sys
C = []
def c(src, **v): C.append((src, v))
# literals, arithmetic, output of Python values
c("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}|{{ 1.5 + 1 }}")
c("{{ none }}|{{ None }}|{{ true }}|{{ False }}|{{ [1, 'a', none, true] }}|{{ {'a': 1, 'b': [2.5]} }}|{{ 1e-5 }}|{{ 1e16 }}|{{ 0.1 + 0.2 }}|{{ 3.0 }}")
c("{{ 'a\\tb\\n' ~ \"q'\\\"\" ~ '\\u00e9\\x41' }}|{{ 'ab' 'cd' }}|{{ 'x' * 3 }}|{{ [1] * 2 }}|{{ [1] + [2] }}")
c("{{ 'it\\'s' }}|{{ ['it\\'s', \"a\\\"b\"] }}|{{ 1 ~ 2 ~ none }}")
c("{{ a and b }}|{{ a or b }}|{{ not a }}|{{ 0 or '' or 'x' }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 5 }}|{{ 'b' > 'a' }}|{{ [1,2] == [1,2] }}|{{ 1 == 1.0 }}|{{ 'a' != 'a' }}", a=1, b=0)
c("{{ 'x' if c else 'y' }}|{{ 'x' if not c }}|{{ 'ab' in 'cabd' }}|{{ 3 not in [1, 2] }}|{{ 'k' in {'k': 1} }}", c=False)
# attribute / item / slicing
c("{{ m.role }}|{{ m['content'] }}|{{ m.missing }}|{{ l[0] }}|{{ l[-1] }}|{{ l[1:] }}|{{ l[::-1] }}|{{ l[:-1] }}|{{ s[1:3] }}|{{ s[::-1] }}|{{ s[-2] }}|{{ l.1 }}", m={"role": "user", "content": "hi"}, l=[1, 2, 3], s="héllo")
c("{{ l[5] }}|{{ l[1:100:2] }}|{{ l[-100:2] }}|{{ l[::-2] }}|{{ l[3:0:-1] }}", l=[0, 1, 2, 3, 4])
# tests
c("{{ x is defined }}|{{ y is defined }}|{{ y is undefined }}|{{ n is none }}|{{ x is string }}|{{ x is number }}|{{ d is mapping }}|{{ l is iterable }}|{{ l is sequence }}|{{ t is true }}|{{ f is false }}|{{ 3 is odd }}|{{ 4 is even }}|{{ 9 is divisibleby 3 }}|{{ x is not string }}|{{ 1.5 is float }}|{{ 1 is integer }}|{{ true is boolean }}|{{ 'a' is eq 'a' }}|{{ 'ABC' is upper }}", x="s", n=None, d={}, l=[1], t=True, f=False)
# filters
c("{{ '  a b \\n' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ 'abc' | upper }}|{{ 'ABC' | lower }}|{{ 'hello wORLD-foo' | title }}|{{ 'hello World' | capitalize }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ [1, 2, 3] | join(', ') }}|{{ l | first }}|{{ l | last }}|{{ 'héllo' | length }}|{{ l | count }}")
C[-1][1]["l"] = [4, 5, 6]
c("{{ x | default('d') }}|{{ '' | default('d', true) }}|{{ '' | default('d') }}|{{ 'abc' | list }}|{{ 12 | string }}|{{ '42' | int + 1 }}|{{ 'x' | int }}|{{ '2.5' | float }}|{{ d | items | list }}|{{ -3 | abs }}|{{ 'abc' | reverse }}|{{ [1,2] | reverse | list }}", d={"a": 1, "b": 2})
c("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('+') }}|{{ msgs | rejectattr('role', 'eq', 'user') | list | length }}|{{ msgs | selectattr('name') | list | length }}|{{ [1, 0, 2] | select | list }}|{{ [1, 2, 3, 4] | reject('odd') | list }}|{{ ['a', 'B'] | map('upper') | list }}", msgs=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "name": "x"}, {"role": "user", "content": "c"}])
c("{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ [] | tojson(indent=2) }}|{{ 'é\"\\n\\u0001' | tojson }}|{{ [1.0, 2, none, true, 1e20] | tojson }}", d={"name": "f", "params": {"b": [1, 2], "a": {}}})
c("{{ text | indent(2) }}|{{ text | indent(2, first=true) }}|{{ text | indent(2, blank=true) }}|{{ text2 | indent(4) }}", text="a\n\nb", text2="x\ny\n")
# string methods
c("{{ s.startswith('ab') }}|{{ s.endswith(('x', 'cd')) }}|{{ s.strip() }}|{{ '--a--'.lstrip('-') }}|{{ '--a--'.rstrip('-') }}|{{ 'a b  c'.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '  a b c  '.split(none, 1) }}|{{ 'Hi'.upper() }}|{{ 'Hi'.lower() }}|{{ 'ab'.replace('b', 'c') }}|{{ 'hello there'.title() }}|{{ '{} and {}'.format(1, 'x') }}|{{ '{0}{0}{n}'.format('a', n=2) }}|{{ '-'.join(['a', 'b']) }}|{{ 'abcb'.find('b') }}|{{ 'abcb'.count('b') }}", s="abcd")
c("{{ '</think>x</think>\\n\\ny'.split('</think>')[-1].lstrip('\\n') }}|{{ ' \\u3000a\\u00a0'.strip() }}|{{ 'x'.split('x') }}")
# dict methods
c("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.keys() | list }}|{{ d.values() | list }}|{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 5) }}", d={"a": 1, "b": 2})
# loops
c("{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a', 'b') }};{% endfor %}", l=["x", "y", "z"])
c("{% for x in l if x > 1 %}{{ x }}{{ loop.length }}{% else %}empty{% endfor %}|{% for x in [] %}no{% else %}empty{% endfor %}|{% for x in l %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", l=[1, 2, 3, 4, 5])
c("{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }}{% endfor %}{{ loop.index }} {% endfor %}|{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}|{% for k in {'p': 1, 'q': 2} %}{{ k }}{% endfor %}")
# scoping and namespace
c("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}|{% set ns = namespace(x=1, found=false) %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.x }}{{ ns.found }}|{% if true %}{% set y = 5 %}{% endif %}{{ y }}|{% set a, b = 1, 2 %}{{ a }}{{ b }}")
c("{% set block %}Hello {{ name }}!{% endset %}{{ block | upper }}", name="bob")
# macros
c("{% macro greet(who, punct='!') %}Hi {{ who }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(who='c', punct='.') }}")
c("{% macro render(m) %}{% if m is string %}{{ m }}{% else %}{% for p in m %}{{ p.text }}{% endfor %}{% endif %}{% endmacro %}{{ render('x') }}|{{ render([{'text': 'a'}, {'text': 'b'}]) }}")
# whitespace control
c("a  \n  {%- if true -%}  \n  b  \n  {%- endif -%}\n  c")
c("<ul>\n  {% for x in l %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n", l=[1, 2])
c("x {% if true %}y{% endif %} z\n  {# comment #}\n  w {#- c -#} v\n{{ 'a' -}}   \n  {{- 'b' }}\n")
c("{% raw %}{{ not rendered }} {% if %}{% endraw %}|{%+ if true %} k{% endif +%}\nline")
c("  {{ 'var' }}\n  {% if true %}\n  kept\n  {% endif %}\n")
C.append(("line1\r\nline2\r\n{% if x %}\r\nyes\r\n{% endif %}\r\n", {"x": 1}))
# generation block and strftime not deterministic: skip strftime
c("{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}", messages=[{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}])
# raise_exception
c("{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}ok", messages=[{"role": "system", "content": "s"}])
# Llama 3 style
LLAMA3 = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""
conv = [{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "id": "c1", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]},
        {"role": "tool", "content": "{\"t\": 21}", "tool_call_id": "c1"}, {"role": "assistant", "content": "21 C."}]
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
c(LLAMA3, messages=conv, bos_token="<|begin_of_text|>", add_generation_prompt=False, tools=tools)
c(LLAMA3, messages=conv[:4], bos_token="<|begin_of_text|>", add_generation_prompt=True)
# Mistral style
MISTRAL = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""
c(MISTRAL, messages=[{"role": "system", "content": "Sys"}, {"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}, {"role": "user", "content": "C"}], bos_token="<s>", eos_token="</s>")
c(MISTRAL, messages=[{"role": "user", "content": "A"}, {"role": "user", "content": "C"}], bos_token="<s>", eos_token="</s>")
# Gemma style
GEMMA = """{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"""
c(GEMMA, messages=[{"role": "user", "content": " A "}, {"role": "assistant", "content": "B"}], bos_token="<bos>", add_generation_prompt=True)
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols
from jinja2.exceptions import TemplateError
def raise_exception(m): raise TemplateError(m)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
def render(src, vars):
    try:
        return env.from_string(src).render(**vars)
    except Exception as e:
        return "ERROR: %s: %s" % (type(e).__name__, e)
def cstr(s):
    out = '"'
    for ch in s.encode('utf-8'):
        c = chr(ch)
        if c == '"': out += '\\"'
        elif c == '\\': out += '\\\\'
        elif c == '\n': out += '\\n'
        elif c == '\t': out += '\\t'
        elif 32 <= ch < 127: out += c
        else: out += '\\%03o' % ch
    return out + '"'
for src, vars in C:
    r = "ua" if "{% generation %}" in src else render(src, vars)
    print("    {%s,\n     %s,\n     %s}," % (cstr(src), cstr(json.dumps(vars)), cstr(r)))
