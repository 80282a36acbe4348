"""Who may be served first (Vietnamese law gives priority to these groups): code ->
(Vietnamese, English). core/engine.py gives tickets these groups; a service may accept
only some of them (its ``priorities``, core/fields.py)."""

PRIORITIES = {
    "elderly": ("Người cao tuổi", "Elderly"),
    "disabled": ("Người khuyết tật", "Person with a disability"),
    "pregnant": ("Phụ nữ mang thai", "Pregnant woman"),
    "infant": ("Người đi cùng trẻ nhỏ", "With a small child"),
    "merit": ("Người có công với cách mạng", "Person of merit"),
}
